// safetensors header: read the 8-byte length + JSON from any ByteSource and validate every tensor entry.
// Format: https://huggingface.co/docs/safetensors (u64 LE header length N, N bytes of JSON, then the data).
import { ShoalError, errorMessage } from '../errors.ts';
import { BLOCKS, tensorBytes, type WeightDtype } from './types.ts';
import type { ByteSource } from './source.ts';

export interface TensorInfo {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  begin: number; // absolute file offset of the first byte
  end: number; // absolute file offset one past the last byte
  /** GGUF llama q/k: rows in llama.cpp's pairwise RoPE order over this many heads, undone at load. */
  permutedHeads?: number;
}

export interface SafetensorsHeader {
  dataOffset: number; // 8 + header length: where data_offsets count from
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB; so do we, before allocating them. */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPES: readonly WeightDtype[] = ['F32', 'F16', 'BF16'];

function bad(file: string, why: string): never {
  throw new ShoalError('ERR_BAD_SAFETENSORS', `${file}: ${why}`);
}

export async function readSafetensorsHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  const size = await src.size();
  if (size < 8)
    bad(
      file,
      `the file is ${size} bytes, too short for the 8-byte header length; ` +
        'it is not a safetensors file (truncated download?)',
    );
  const lenBytes = await src.read(0, 8);
  const headerLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen + 8n > BigInt(size)) {
    bad(
      file,
      `header length ${headerLen} runs past the end of the file (${size} bytes); ` +
        'the file is truncated or not a safetensors file',
    );
  }
  const n = Number(headerLen);
  if (n > MAX_HEADER_BYTES)
    bad(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit; the file is corrupt`);
  const headerBytes = await src.read(8, n);
  return parseSafetensorsHeader(file, headerBytes, size);
}

/** Validate a header's JSON bytes (the N bytes after the length) against the file size. */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataOffset = 8 + headerBytes.length;
  const dataBytes = fileSize - dataOffset;
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    bad(file, `the header is not valid JSON (${errorMessage(e)}); the file is corrupt`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    bad(file, 'the header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}');

  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry === 'object' && entry !== null && !Array.isArray(entry))
        metadata = entry as Record<string, string>;
      else bad(file, '__metadata__ must be an object of strings');
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      bad(file, `tensor "${name}": entry must be an object with dtype, shape and data_offsets`);
    const e = entry as Record<string, unknown>;
    if (typeof e.dtype !== 'string' || !DTYPES.includes(e.dtype as WeightDtype)) {
      bad(
        file,
        `tensor "${name}": dtype ${JSON.stringify(e.dtype)} is not supported (supported: ${DTYPES.join(', ')}); ` +
          'convert the checkpoint to one of them',
      );
    }
    const dtype = e.dtype as WeightDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(file, `tensor "${name}": shape ${JSON.stringify(e.shape)} must be a list of non-negative integers`);
    }
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      bad(
        file,
        `tensor "${name}": data_offsets ${JSON.stringify(off)} must be [begin, end] with non-negative integers`,
      );
    }
    const [b, en] = off as [number, number];
    if (b > en || en > dataBytes) {
      bad(
        file,
        `tensor "${name}": data_offsets [${b}, ${en}] are out of range ` +
          `(the data section holds ${dataBytes} bytes after the ${dataOffset}-byte header)`,
      );
    }
    const want = tensorBytes(dtype, shape, name);
    if (want !== en - b) {
      bad(
        file,
        `tensor "${name}": shape [${shape.join(', ')}] x ${dtype} (${BLOCKS[dtype].bytes} bytes) = ${want} bytes, ` +
          `but data_offsets [${b}, ${en}] span ${en - b} bytes`,
      );
    }
    tensors.set(name, { name, dtype, shape, begin: dataOffset + b, end: dataOffset + en });
  }

  // Overlap: sort by start; any tensor starting before the furthest end seen so far overlaps it.
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin);
  let furthest: TensorInfo | null = null;
  for (const t of sorted) {
    if (furthest && t.begin < furthest.end) {
      bad(
        file,
        `tensors "${furthest.name}" [${furthest.begin - dataOffset}, ${furthest.end - dataOffset}] ` +
          `and "${t.name}" [${t.begin - dataOffset}, ${t.end - dataOffset}] overlap`,
      );
    }
    if (!furthest || t.end > furthest.end) furthest = t;
  }
  return { dataOffset, tensors, metadata };
}
