// Serialize tensors to the safetensors format (in memory, or header first for streaming to disk).
// Format: u64 little-endian header length N, N bytes of JSON padded with spaces, then the data.
import { tensorBytes, type HostTensor, type WeightDtype } from './types.ts';
import { ShoalError } from '../errors.ts';

/** What the header needs to know about a tensor: no data, so shards can be planned before generating. */
export interface TensorEntry {
  name: string;
  dtype: WeightDtype;
  shape: number[];
}

export interface SafetensorsLayout {
  /** The 8-byte length prefix plus the padded JSON header: write this first. */
  header: Uint8Array;
  /** Byte range of each tensor's data relative to the start of the data section, in the given order. */
  offsets: Array<{ name: string; begin: number; end: number }>;
  /** Bytes of tensor data after the header. */
  dataBytes: number;
}

/** Bytes of an entry's data (types.ts tensorBytes, the one byte-size rule). */
export function entryBytes(t: TensorEntry): number {
  return tensorBytes(t.dtype, t.shape, t.name);
}

/**
 * Build the header for tensors laid out back to back in the given order. The JSON is padded with
 * spaces so the data section starts on an 8-byte boundary, as the reference implementation does.
 */
export function safetensorsLayout(
  entries: TensorEntry[],
  metadata: Record<string, string> = { format: 'pt' },
): SafetensorsLayout {
  const json: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) json.__metadata__ = metadata;
  const offsets: SafetensorsLayout['offsets'] = [];
  let at = 0;
  for (const e of entries) {
    if (e.name === '__metadata__' || e.name in json)
      throw new ShoalError('ERR_BAD_SAFETENSORS', `safetensors writer: duplicate tensor name "${e.name}"`);
    const n = entryBytes(e);
    json[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + n] };
    offsets.push({ name: e.name, begin: at, end: at + n });
    at += n;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(text.length / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  header.fill(0x20, 8 + text.length);
  return { header, offsets, dataBytes: at };
}

/** One complete safetensors file in memory (small models and tests; big ones stream, see make-model). */
export function writeSafetensors(tensors: HostTensor[], metadata?: Record<string, string>): Uint8Array {
  for (const t of tensors) {
    if (t.data.byteLength !== entryBytes(t)) {
      throw new ShoalError(
        'ERR_BAD_SAFETENSORS',
        `safetensors writer: tensor "${t.name}" has ${t.data.byteLength} bytes ` +
          `but shape [${t.shape.join(', ')}] x ${t.dtype} needs ${entryBytes(t)}`,
      );
    }
  }
  const { header, offsets, dataBytes } = safetensorsLayout(tensors, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  tensors.forEach((t, i) => out.set(t.data, header.length + offsets[i].begin));
  return out;
}

/** The Hugging Face shard file name: model-00001-of-00003.safetensors. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Split tensors (in order) into shards of at most maxShardBytes of data each, as Hugging Face's
 * max_shard_size does: a tensor never straddles shards, and one bigger than the limit gets its own.
 */
export function planShards<T extends TensorEntry>(entries: T[], maxShardBytes: number): T[][] {
  const shards: T[][] = [];
  let cur: T[] = [];
  let curBytes = 0;
  for (const e of entries) {
    const n = entryBytes(e);
    if (cur.length > 0 && curBytes + n > maxShardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(e);
    curBytes += n;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

/** model.safetensors.index.json for a sharded checkpoint; total_size counts tensor data bytes only. */
export function shardIndex(shards: TensorEntry[][]): {
  metadata: { total_size: number };
  weight_map: Record<string, string>;
} {
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((shard, i) => {
    for (const e of shard) {
      weightMap[e.name] = shardFileName(i, shards.length);
      total += entryBytes(e);
    }
  });
  return { metadata: { total_size: total }, weight_map: weightMap };
}
