// Serialize a GGUF file (version 3, little-endian): header, metadata, tensor infos, then each tensor's data at a
// 32-byte aligned offset. Header first and sizes from the block formats, so make-model can stream tensors to disk.
// Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
import { ShoalError } from '../errors.ts';
import { tensorBytes, type WeightDtype } from './types.ts';

export const GGUF_ALIGNMENT = 32;

/** ggml type ids written for each dtype (ggml.h enum ggml_type). */
const GGML_TYPE_IDS: Record<WeightDtype, number> = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q5_0: 6,
  Q8_0: 8,
  Q4_K: 12,
  Q6_K: 14,
  BF16: 30,
};

/**
 * Metadata values as written: integers as u32 (i32 when negative), other numbers f32, lists of one kind; `{ f32 }`
 * forces f32 for keys llama.cpp reads as floats whatever their value (rope.freq_base 10000).
 */
/** Plain JS values pick their GGUF type; an Int32Array is written as an INT32 array (llama.cpp demands that type for
 * tokenizer.ggml.token_type and refuses the vocabulary otherwise). */
export type GgufWriteValue = string | number | boolean | string[] | number[] | Int32Array | { f32: number };

/** A tensor as the header lists it: its GGUF name, dtype and shape in row-major (Hugging Face) order. */
export interface GgufTensorEntry {
  name: string;
  dtype: WeightDtype;
  shape: number[];
}

const pad = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

/** A growable little-endian byte buffer. */
class Bytes {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf);
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // room() may grow the buffer: take the offset first, then touch this.view / this.buf (never the other order).
  private at(n: number): DataView {
    this.room(n);
    return this.view;
  }
  u32 = (v: number) => this.at(4).setUint32(this.length - 4, v, true);
  i32 = (v: number) => this.at(4).setInt32(this.length - 4, v, true);
  f32 = (v: number) => this.at(4).setFloat32(this.length - 4, v, true);
  u64 = (v: number) => this.at(8).setBigUint64(this.length - 8, BigInt(v), true);
  u8 = (v: number) => this.at(1).setUint8(this.length - 1, v);
  str = (s: string) => {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    const at = this.room(b.length);
    this.buf.set(b, at);
  };
  bytes = () => this.buf.slice(0, this.length);
}

// GGUF value types (gguf.md): UINT32 4, INT32 5, FLOAT32 6, BOOL 7, STRING 8, ARRAY 9.
function numberType(xs: number[]): number {
  if (!xs.every(Number.isInteger)) return 6;
  return xs.some((x) => x < 0) ? 5 : 4;
}

function writeScalar(b: Bytes, type: number, v: string | number | boolean): void {
  if (type === 8) b.str(v as string);
  else if (type === 7) b.u8(v ? 1 : 0);
  else if (type === 6) b.f32(v as number);
  else if (type === 5) b.i32(v as number);
  else b.u32(v as number);
}

function writeValue(b: Bytes, key: string, v: GgufWriteValue): void {
  b.str(key);
  if (v instanceof Int32Array) {
    b.u32(9);
    b.u32(5);
    b.u64(v.length);
    for (const x of v) b.i32(x);
    return;
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    b.u32(6);
    b.f32(v.f32);
    return;
  }
  const list = Array.isArray(v) ? (v as (string | number)[]) : null;
  const one = (x: unknown[]) =>
    typeof x[0] === 'string' ? 8 : typeof x[0] === 'boolean' ? 7 : numberType(x as number[]);
  if (!list) {
    const t = one([v]);
    b.u32(t);
    writeScalar(b, t, v as string | number | boolean);
    return;
  }
  const t = list.length === 0 ? 4 : one(list);
  b.u32(9);
  b.u32(t);
  b.u64(list.length);
  for (const x of list) writeScalar(b, t, x);
}

export interface GgufLayout {
  /** Everything before the data section, padded to the alignment: write this first. */
  header: Uint8Array;
  /** Each tensor's data range relative to the data section (begin is aligned), in the given order. */
  offsets: { name: string; begin: number; end: number }[];
  dataBytes: number;
}

export function ggufLayout(metadata: Record<string, GgufWriteValue>, tensors: GgufTensorEntry[]): GgufLayout {
  const b = new Bytes();
  b.u32(0x46554747); // "GGUF" read as a little-endian u32
  b.u32(3);
  b.u64(tensors.length);
  b.u64(Object.keys(metadata).length);
  for (const [k, v] of Object.entries(metadata)) writeValue(b, k, v);
  let at = 0;
  const offsets = tensors.map((t) => {
    const begin = pad(at);
    at = begin + tensorBytes(t.dtype, t.shape, t.name);
    return { name: t.name, begin, end: at };
  });
  tensors.forEach((t, i) => {
    b.str(t.name);
    b.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) b.u64(d); // ne[0] is the row length
    b.u32(GGML_TYPE_IDS[t.dtype]);
    b.u64(offsets[i].begin);
  });
  while (b.length % GGUF_ALIGNMENT) b.u8(0);
  return { header: b.bytes(), offsets, dataBytes: at };
}

/** A whole GGUF file in memory (tests, small models). */
export function writeGguf(
  metadata: Record<string, GgufWriteValue>,
  tensors: (GgufTensorEntry & { data: Uint8Array })[],
): Uint8Array {
  const { header, offsets, dataBytes } = ggufLayout(metadata, tensors);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  tensors.forEach((t, i) => {
    const { begin, end } = offsets[i];
    if (t.data.byteLength !== end - begin)
      throw new ShoalError('ERR_BAD_ARGS', `${t.name}: ${t.data.byteLength} bytes, the shape needs ${end - begin}`);
    out.set(t.data, header.length + begin);
  });
  return out;
}
