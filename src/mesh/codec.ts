// Binary wire codec: message -> frames of at most MAX_FRAME_BYTES (header + chunk), reassembly with a
// length and CRC-32 check, and a small tensor format (f32/i32 + shape) for activations.
// Decoding never throws: hostile bytes become a DecodeResult with ok=false.
import { crc32 } from './crc32.ts';
import { parseMessage, type MeshMessage } from './protocol.ts';

/** Chromium rejects data-channel messages over 256 KiB; 64 KiB frames interleave well with control traffic. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Fixed frame header: magic u16, version u8, flags u8, msgId u32, index u32, count u32, totalBytes u32, crc u32. */
export const FRAME_HEADER_BYTES = 24;
export const FRAME_CHUNK_BYTES = MAX_FRAME_BYTES - FRAME_HEADER_BYTES;
/** Largest message (JSON + binary) accepted, bytes. */
export const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
/** Largest JSON part of a message, bytes. */
export const MAX_JSON_BYTES = 1024 * 1024;
/** Partial messages one receiver keeps at a time (ordered channels need one; more means a hostile sender). */
export const MAX_PENDING_MESSAGES = 8;

export const FRAME_MAGIC = 0x5348; // 'SH'
export const FRAME_VERSION = 1;

const utf8Enc = new TextEncoder();
const utf8Dec = new TextDecoder('utf-8', { fatal: true });

/** Serialise one message (JSON + optional binary) into its payload bytes: u32 jsonBytes, json, binary. */
export function encodePayload(msg: MeshMessage, binary?: Uint8Array): Uint8Array {
  const json = utf8Enc.encode(JSON.stringify(msg));
  if (json.length > MAX_JSON_BYTES)
    throw new RangeError(`message JSON is ${json.length} bytes, over ${MAX_JSON_BYTES}`);
  const binBytes = binary ? binary.length : 0;
  const total = 4 + json.length + binBytes;
  if (total > MAX_MESSAGE_BYTES) throw new RangeError(`message is ${total} bytes, over ${MAX_MESSAGE_BYTES}`);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  if (binary) out.set(binary, 4 + json.length);
  return out;
}

/** Split a message into frames; each frame is its own ArrayBuffer-backed Uint8Array, ready for RTCDataChannel.send. */
export function encodeFrames(msgId: number, msg: MeshMessage, binary?: Uint8Array): Uint8Array[] {
  const payload = encodePayload(msg, binary);
  const crc = crc32(payload);
  const count = Math.max(1, Math.ceil(payload.length / FRAME_CHUNK_BYTES));
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const chunk = payload.subarray(i * FRAME_CHUNK_BYTES, Math.min(payload.length, (i + 1) * FRAME_CHUNK_BYTES));
    const f = new Uint8Array(FRAME_HEADER_BYTES + chunk.length);
    const dv = new DataView(f.buffer);
    dv.setUint16(0, FRAME_MAGIC, true);
    dv.setUint8(2, FRAME_VERSION);
    dv.setUint8(3, 0);
    dv.setUint32(4, msgId >>> 0, true);
    dv.setUint32(8, i, true);
    dv.setUint32(12, count, true);
    dv.setUint32(16, payload.length, true);
    dv.setUint32(20, crc, true);
    f.set(chunk, FRAME_HEADER_BYTES);
    frames.push(f);
  }
  return frames;
}

export type DecodeResult =
  { ok: true; msg: MeshMessage; binary: Uint8Array | null; bytes: number } | { ok: false; error: string };

/** Parse the payload bytes of one complete message. Never throws. */
export function decodePayload(payload: Uint8Array): DecodeResult {
  try {
    if (payload.length < 4) return { ok: false, error: 'payload shorter than its length prefix' };
    const jsonBytes = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
    if (jsonBytes > MAX_JSON_BYTES || 4 + jsonBytes > payload.length)
      return { ok: false, error: `bad JSON length ${jsonBytes}` };
    let value: unknown;
    try {
      value = JSON.parse(utf8Dec.decode(payload.subarray(4, 4 + jsonBytes)));
    } catch {
      return { ok: false, error: 'message JSON does not parse' };
    }
    const msg = parseMessage(value);
    if (typeof msg === 'string') return { ok: false, error: msg };
    const rest = payload.subarray(4 + jsonBytes);
    return { ok: true, msg, binary: rest.length > 0 ? rest : null, bytes: payload.length };
  } catch (e) {
    return { ok: false, error: `undecodable payload: ${String(e)}` };
  }
}

interface Partial {
  count: number;
  totalBytes: number;
  crc: number;
  next: number; // next frame index expected (channels are ordered)
  chunks: Uint8Array[];
  received: number;
}

/**
 * Reassembles frames from one sender. push() returns null while a message is incomplete, a DecodeResult
 * when one completes or a frame is rejected. Memory held is bounded by what actually arrived.
 */
export class Reassembler {
  private partial = new Map<number, Partial>();

  get pendingMessages(): number {
    return this.partial.size;
  }

  push(frame: Uint8Array): DecodeResult | null {
    try {
      return this.pushUnsafe(frame);
    } catch (e) {
      return { ok: false, error: `frame rejected: ${String(e)}` };
    }
  }

  private pushUnsafe(frame: Uint8Array): DecodeResult | null {
    if (!(frame instanceof Uint8Array)) return { ok: false, error: 'frame is not binary' };
    if (frame.length < FRAME_HEADER_BYTES)
      return { ok: false, error: `frame of ${frame.length} bytes is shorter than its header` };
    if (frame.length > MAX_FRAME_BYTES)
      return { ok: false, error: `frame of ${frame.length} bytes exceeds ${MAX_FRAME_BYTES}` };
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    if (dv.getUint16(0, true) !== FRAME_MAGIC) return { ok: false, error: 'bad frame magic' };
    if (dv.getUint8(2) !== FRAME_VERSION)
      return { ok: false, error: `frame version ${dv.getUint8(2)} is not ${FRAME_VERSION}` };
    if (dv.getUint8(3) !== 0) return { ok: false, error: 'reserved frame flags are set' };
    const msgId = dv.getUint32(4, true);
    const index = dv.getUint32(8, true);
    const count = dv.getUint32(12, true);
    const totalBytes = dv.getUint32(16, true);
    const crc = dv.getUint32(20, true);
    const chunk = frame.subarray(FRAME_HEADER_BYTES);
    if (totalBytes > MAX_MESSAGE_BYTES)
      return this.reject(msgId, `message of ${totalBytes} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    if (count !== Math.max(1, Math.ceil(totalBytes / FRAME_CHUNK_BYTES)))
      return this.reject(msgId, `frame count ${count} does not match ${totalBytes} bytes`);
    const expectChunk = index === count - 1 ? totalBytes - index * FRAME_CHUNK_BYTES : FRAME_CHUNK_BYTES;
    if (index >= count || chunk.length !== expectChunk)
      return this.reject(msgId, `frame ${index}/${count} has ${chunk.length} bytes, expected ${expectChunk}`);

    let p = this.partial.get(msgId);
    if (!p) {
      if (index !== 0) return { ok: false, error: `frame ${index} of unknown message ${msgId}` };
      if (this.partial.size >= MAX_PENDING_MESSAGES)
        return { ok: false, error: `more than ${MAX_PENDING_MESSAGES} partial messages` };
      p = { count, totalBytes, crc, next: 0, chunks: [], received: 0 };
      this.partial.set(msgId, p);
    }
    if (p.count !== count || p.totalBytes !== totalBytes || p.crc !== crc)
      return this.reject(msgId, 'frame header disagrees with earlier frames of its message');
    if (index !== p.next) return this.reject(msgId, `frame ${index} arrived, expected ${p.next}`);
    p.chunks.push(chunk.slice()); // copy: the channel may reuse the frame's buffer
    p.received += chunk.length;
    p.next++;
    if (p.next < p.count) return null;

    this.partial.delete(msgId);
    const payload = p.chunks.length === 1 ? p.chunks[0] : concat(p.chunks, p.received);
    if (payload.length !== p.totalBytes)
      return { ok: false, error: `message ${msgId} length ${payload.length} != ${p.totalBytes}` };
    if (crc32(payload) !== p.crc) return { ok: false, error: `message ${msgId} failed its CRC-32 check` };
    return decodePayload(payload);
  }

  private reject(msgId: number, error: string): DecodeResult {
    this.partial.delete(msgId);
    return { ok: false, error };
  }

  clear(): void {
    this.partial.clear();
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// ---- Tensors, little-endian: magic u16 'TN', version u8, dtype u8 (1 = f32, 2 = i32), ndim u8, 3 pad bytes,
// ndim x u32 dims, data.

export const TENSOR_MAGIC = 0x4e54;
export const MAX_TENSOR_DIMS = 8;
export type TensorDtype = 'f32' | 'i32';
export interface WireTensor {
  dtype: TensorDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

const DTYPE_CODE: Record<TensorDtype, number> = { f32: 1, i32: 2 };

export function encodeTensor(t: WireTensor): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.shape.length > MAX_TENSOR_DIMS || t.shape.some((d) => !Number.isInteger(d) || d < 0 || d > 0xffffffff))
    throw new RangeError(`bad tensor shape [${t.shape.join(',')}]`);
  if (n !== t.data.length)
    throw new RangeError(`tensor shape [${t.shape.join(',')}] holds ${n} elements, data has ${t.data.length}`);
  if ((t.dtype === 'f32') !== t.data instanceof Float32Array)
    throw new TypeError(`tensor dtype ${t.dtype} does not match its data array`);
  const headerBytes = 8 + 4 * t.shape.length;
  const out = new Uint8Array(headerBytes + n * 4);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, TENSOR_MAGIC, true);
  dv.setUint8(2, 1);
  dv.setUint8(3, DTYPE_CODE[t.dtype]);
  dv.setUint8(4, t.shape.length);
  t.shape.forEach((d, i) => dv.setUint32(8 + 4 * i, d, true));
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, n * 4), headerBytes);
  return out;
}

/** Decode a tensor; returns an error string for anything malformed. Never throws. */
export function decodeTensor(bytes: Uint8Array): WireTensor | string {
  try {
    if (!(bytes instanceof Uint8Array) || bytes.length < 8) return 'tensor shorter than its header';
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (dv.getUint16(0, true) !== TENSOR_MAGIC) return 'bad tensor magic';
    if (dv.getUint8(2) !== 1) return `tensor version ${dv.getUint8(2)} unsupported`;
    const code = dv.getUint8(3);
    const dtype: TensorDtype | null = code === 1 ? 'f32' : code === 2 ? 'i32' : null;
    if (!dtype) return `unknown tensor dtype code ${code}`;
    const ndim = dv.getUint8(4);
    if (ndim > MAX_TENSOR_DIMS) return `tensor has ${ndim} dims, over ${MAX_TENSOR_DIMS}`;
    const headerBytes = 8 + 4 * ndim;
    if (bytes.length < headerBytes) return 'tensor shorter than its shape';
    const shape: number[] = [];
    let n = 1;
    for (let i = 0; i < ndim; i++) {
      const d = dv.getUint32(8 + 4 * i, true);
      shape.push(d);
      n *= d;
    }
    if (bytes.length !== headerBytes + n * 4)
      return `tensor [${shape.join(',')}] needs ${headerBytes + n * 4} bytes, got ${bytes.length}`;
    const raw = bytes.slice(headerBytes); // copy: aligned and independent of the frame buffers
    const data = dtype === 'f32' ? new Float32Array(raw.buffer, 0, n) : new Int32Array(raw.buffer, 0, n);
    return { dtype, shape, data };
  } catch (e) {
    return `undecodable tensor: ${String(e)}`;
  }
}
