// One entry point for "a model" wherever one is accepted: a Hugging Face folder (local, URL, Hub repo id) or GGUF
// file(s): a local path or URL ending in .gguf, a Hub file (owner/repo/path/file.gguf) or a Hub repo with a quant
// tag (owner/repo:Q4_K_M picks the matching file). Split GGUF files (-00001-of-0000N) open as one model.
import { parseGgufShardFilename } from '@huggingface/gguf';
import { ShoalError, errorMessage } from '../errors.ts';
import { openGgufModel } from './ggufModel.ts';
import {
  HUB_URL,
  isHubRepoId,
  isLocalFolder,
  openModel,
  resolveModelFiles,
  type HttpModelOptions,
  type ModelSource,
} from './model.ts';

/** A GGUF model: the folder (path or URL) holding it and its file name(s), shards in order. */
export interface GgufLocation {
  folder: string;
  files: string[];
}

/** Every shard's name from any one of them (model-00002-of-00003.gguf -> the three), or the name itself. */
export function ggufShardNames(name: string): string[] {
  const s = parseGgufShardFilename(name);
  if (!s) return [name];
  const total = Number(s.total);
  return Array.from({ length: total }, (_, i) => `${s.prefix}-${String(i + 1).padStart(5, '0')}-of-${s.total}.gguf`);
}

function splitPath(path: string): GgufLocation {
  const cut = path.lastIndexOf('/');
  return { folder: cut < 0 ? '.' : path.slice(0, cut + 1), files: ggufShardNames(path.slice(cut + 1)) };
}

/** owner/repo/path/to/file.gguf on the Hub (three or more segments, not a local path or URL). */
function hubFile(location: string, revision: string): GgufLocation | null {
  const m = /^([A-Za-z0-9][\w.-]*\/[\w.-]+)\/(.+\.gguf)$/i.exec(location);
  if (!m || m[2].includes('..')) return null;
  return splitPath(`${HUB_URL}${m[1]}/resolve/${encodeURIComponent(revision)}/${m[2]}`);
}

/** The one .gguf file of a Hub repo whose name carries `tag` (Q4_K_M, q8_0, ...), first shard of a split one. */
export function pickQuantFile(repo: string, tag: string, names: string[]): string {
  const re = new RegExp(`(^|[-._/])${tag.replace(/[^\w]/g, '')}([-._]|$)`, 'i');
  const ggufs = names.filter((n) => /\.gguf$/i.test(n));
  const hits = ggufs.filter((n) => re.test(n.replace(/\.gguf$/i, '')) && !/-0000[2-9]-of-|-000[1-9]\d-of-/.test(n));
  if (hits.length === 1) return hits[0];
  const listing = ggufs.length ? ggufs.join(', ') : 'none';
  throw new ShoalError(
    'ERR_BAD_ARGS',
    hits.length === 0
      ? `${repo}: no GGUF file matches the quant tag "${tag}" (GGUF files there: ${listing})`
      : `${repo}: several GGUF files match "${tag}" (${hits.join(', ')}); name the file: ${repo}/FILE.gguf`,
  );
}

async function hubQuant(repo: string, tag: string, opts: HttpModelOptions): Promise<GgufLocation> {
  const revision = opts.revision ?? 'main';
  const url = `${HUB_URL}api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=1`;
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch.bind(globalThis);
  let names: string[];
  try {
    const res = await fetchImpl(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    names = ((await res.json()) as { path: string }[]).map((e) => e.path);
  } catch (e) {
    throw new ShoalError('ERR_FETCH', `${url}: could not list the repo's files (${errorMessage(e)})`, { cause: e });
  }
  return splitPath(`${HUB_URL}${repo}/resolve/${encodeURIComponent(revision)}/${pickQuantFile(repo, tag, names)}`);
}

/** Where a location's GGUF file(s) are, or null when the location is a model folder. */
export async function ggufLocation(location: string, opts: HttpModelOptions = {}): Promise<GgufLocation | null> {
  const tagged = /^([^:/]+\/[^:/]+):([\w.-]+)$/.exec(location);
  if (tagged && isHubRepoId(tagged[1])) return hubQuant(tagged[1], tagged[2], opts);
  if (!/\.gguf$/i.test(location)) return null;
  const local = splitPath(location);
  const isPathOrUrl = /^(https?:\/\/|\.|\/|[A-Za-z]:\\)/i.test(location);
  if (isPathOrUrl || (await isLocalFolder(local.folder))) return local;
  return hubFile(location, opts.revision ?? 'main') ?? local;
}

/** Open a model wherever it is: a Hugging Face folder (config.json + safetensors) or GGUF file(s). */
export async function openModelAt(location: string, opts: HttpModelOptions = {}): Promise<ModelSource> {
  const g = await ggufLocation(location, opts);
  if (!g) return openModel(await resolveModelFiles(location, opts));
  return openGgufModel(await resolveModelFiles(g.folder, opts), g.files);
}
