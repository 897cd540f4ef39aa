// Weight-loading throughput from the model source, measured with real Range requests through the same
// reader the engine uses (weights/httpModelFiles), under this tab's loading cap.
import { httpModelFiles, INDEX_FILE, SINGLE_FILE, type ModelFiles } from '../weights/model.ts';
import { PROBE_BYTES as SIZE_PROBE_BYTES } from '../weights/source.ts';

/** Bytes read by the load probe (long enough for a steady rate, short enough for a phone). */
export const LOAD_PROBE_BYTES = 4 * 1024 * 1024;
export const LOAD_CHUNK_BYTES = 1024 * 1024;

/** The first weights file of a model folder: model.safetensors, or the first shard named by the index. */
async function firstWeightsFile(files: ModelFiles): Promise<string> {
  try {
    await files.bytes(SINGLE_FILE).size();
    return SINGLE_FILE;
  } catch (e) {
    if (!(e as { notFound?: boolean }).notFound) throw e;
    const index = JSON.parse(await files.text(INDEX_FILE)) as { weight_map?: Record<string, string> };
    const first = Object.values(index.weight_map ?? {})[0];
    if (!first) throw e;
    return first;
  }
}

export interface LoadProbeResult {
  bytesPerSec: number;
  bytes: number;
  file: string;
}

/** Read LOAD_PROBE_BYTES from the model's weights in LOAD_CHUNK_BYTES Range reads, cycling over a small file. */
export async function measureLoad(
  modelUrl: string,
  loadBytesPerSec: number | null,
  totalBytes = LOAD_PROBE_BYTES,
): Promise<LoadProbeResult> {
  const files = httpModelFiles(modelUrl, loadBytesPerSec ? { maxBytesPerSec: loadBytesPerSec } : {});
  const file = await firstWeightsFile(files);
  const src = files.bytes(file);
  const size = await src.size();
  // Skip the part the size probe already holds in memory: every timed byte must come over the wire.
  const begin = size > 2 * SIZE_PROBE_BYTES ? SIZE_PROBE_BYTES : 0;
  const span = size - begin;
  let offset = begin;
  let read = 0;
  const t0 = performance.now();
  while (read < totalBytes) {
    const length = Math.min(LOAD_CHUNK_BYTES, totalBytes - read, size - offset);
    await src.read(offset, length);
    read += length;
    offset += length;
    if (offset >= size) offset = begin + ((offset - begin) % Math.max(1, span));
  }
  return { bytesPerSec: read / Math.max(1e-6, (performance.now() - t0) / 1000), bytes: read, file };
}
