// GGUF header (llama.cpp's format): parsed by @huggingface/gguf over any ByteSource (a fetch adapter answers its
// Range requests), then checked here: magic, version, tensor types, row lengths, every tensor inside the file.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (tensor data at tensorDataOffset + offset).
import { gguf, GGMLQuantizationType } from '@huggingface/gguf';
import { ShoalError, errorMessage } from '../errors.ts';
import type { ByteSource } from './source.ts';
import type { TensorInfo } from './safetensors.ts';
import { tensorBytes, type WeightDtype } from './types.ts';

/** ggml type ids (ggml.h enum ggml_type) of the dtypes the engines read. */
const GGML_TYPES: Partial<Record<number, WeightDtype>> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  6: 'Q5_0',
  8: 'Q8_0',
  12: 'Q4_K',
  14: 'Q6_K',
  30: 'BF16',
};

/** Versions 2 and 3 (64-bit counts) are what llama.cpp writes and reads; version 1 died in 2023. */
const VERSIONS = [2, 3];

export type GgufValue = string | number | boolean | GgufValue[];

export interface GgufHeader {
  version: number;
  /** Metadata key -> value; 64-bit integers become numbers (they are counts and ids, far below 2^53). */
  metadata: Record<string, GgufValue>;
  /** By GGUF tensor name; shapes in row-major (Hugging Face) order, the reverse of GGUF's ne[]. */
  tensors: Map<string, TensorInfo>;
}

function bad(file: string, why: string): never {
  throw new ShoalError('ERR_BAD_GGUF', `${file}: ${why}`);
}

/**
 * The parser asks for 2 MB Range reads of an http(s) URL; this fetch serves them from the ByteSource (clamped to
 * the file), so local files, our servers and the Hub all go through the same ByteSource reads as safetensors.
 */
function byteSourceFetch(src: ByteSource, size: number): typeof fetch {
  return async (_url, init) => {
    const range = new Headers(init?.headers).get('Range') ?? '';
    const m = /^bytes=(\d+)-(\d+)$/.exec(range);
    const begin = m ? Math.min(Number(m[1]), size) : 0;
    const end = m ? Math.min(Number(m[2]) + 1, size) : size;
    const bytes = await src.read(begin, end - begin);
    const headers = { 'Content-Range': `bytes ${begin}-${Math.max(begin, end - 1)}/${size}` };
    return new Response(bytes.slice(), { status: 206, headers });
  };
}

function plain(v: unknown): GgufValue {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  return v as GgufValue;
}

/** Read and validate a GGUF file's header: metadata and tensor infos with absolute byte ranges. */
export async function readGgufHeader(src: ByteSource): Promise<GgufHeader> {
  const file = src.name;
  const size = await src.size();
  if (size < 24) bad(file, `the file is ${size} bytes, too short for a GGUF header (truncated download?)`);
  const head = await src.read(0, 8);
  if (new TextDecoder().decode(head.subarray(0, 4)) !== 'GGUF')
    bad(file, 'not a GGUF file (bad magic: it does not start with "GGUF")');
  const version = new DataView(head.buffer, head.byteOffset, 8).getUint32(4, true);
  if (!VERSIONS.includes(version))
    bad(file, `GGUF version ${version} is not supported (supported: ${VERSIONS.join(', ')})`);
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    // A placeholder URL: the parser only needs one that looks like http(s) to use our fetch.
    parsed = await gguf('https://shoal.invalid/model.gguf', { fetch: byteSourceFetch(src, size) });
  } catch (e) {
    if (e instanceof ShoalError) throw e;
    bad(file, `the GGUF header could not be parsed (${errorMessage(e)}); the file is truncated or corrupt`);
  }
  const dataOffset = Number(parsed.tensorDataOffset);
  if (dataOffset > size) bad(file, `the header runs past the end of the file (${size} bytes): the file is truncated`);
  const metadata: Record<string, GgufValue> = {};
  for (const [k, v] of Object.entries(parsed.metadata)) metadata[k] = plain(v);
  const tensors = new Map<string, TensorInfo>();
  for (const t of parsed.tensorInfos) tensors.set(t.name, tensorInfo(file, t, dataOffset, size));
  return { version, metadata, tensors };
}

function tensorInfo(
  file: string,
  t: { name: string; shape: bigint[]; dtype: number; offset: bigint },
  dataOffset: number,
  size: number,
): TensorInfo {
  const dtype = GGML_TYPES[t.dtype];
  if (!dtype) {
    const typeName = (GGMLQuantizationType as unknown as Record<number, string>)[t.dtype] ?? 'unknown';
    const supported = [...new Set(Object.values(GGML_TYPES))].join(', ');
    bad(file, `tensor "${t.name}" has type ${typeName} (ggml type ${t.dtype}), which is not supported (${supported})`);
  }
  const shape = t.shape.map(Number).reverse();
  const begin = dataOffset + Number(t.offset);
  const end = begin + tensorBytes(dtype, shape, `${file}: tensor "${t.name}"`);
  if (end > size)
    bad(
      file,
      `tensor "${t.name}" [${begin}, ${end}) is out of range: the file has ${size} bytes (truncated download?)`,
    );
  return { name: t.name, dtype, shape, begin, end };
}

/**
 * llama.cpp's converter permutes the rows of the llama q and k projections so its RoPE can rotate adjacent pairs:
 * within each head, GGUF row 2i+j holds Hugging Face row j*headDim/2 + i. Undo it (or, writing a GGUF, apply it:
 * `toGguf`) by moving whole rows: for block formats a row is whole blocks, so moving rows is moving byte ranges.
 * Returns fresh bytes.
 */
export function unpermuteHeads(data: Uint8Array, rows: number, heads: number, toGguf = false): Uint8Array {
  const headDim = rows / heads,
    half = headDim / 2,
    rb = data.byteLength / rows;
  if (!Number.isInteger(half) || !Number.isInteger(rb))
    throw new ShoalError('ERR_BAD_GGUF', `cannot undo the q/k row permutation: ${rows} rows over ${heads} heads`);
  const out = new Uint8Array(data.byteLength);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const gguf = (h * headDim + 2 * i + j) * rb,
          hf = (h * headDim + j * half + i) * rb;
        const [from, to] = toGguf ? [hf, gguf] : [gguf, hf];
        out.set(data.subarray(from, from + rb), to);
      }
  return out;
}
