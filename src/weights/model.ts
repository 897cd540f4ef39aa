// A Hugging Face model folder (local, any HTTP server, or the Hub) opened as layers: config, header, per-layer
// coalesced reads. GGUF files open into the same ModelSource (ggufModel.ts builds its 'gguf' layout).
import { ShoalError, errorMessage } from '../errors.ts';
import { tensorBytes, type HostTensor, type WeightDtype } from './types.ts';
import {
  EMBED_TENSOR,
  FINAL_NORM_TENSOR,
  LM_HEAD_TENSOR,
  expectedShape,
  layerTensorNames,
  parseConfig,
  type ModelSpec,
} from '../model/config.ts';
import { readSafetensorsHeader, type SafetensorsHeader, type TensorInfo } from './safetensors.ts';
import { unpermuteHeads } from './gguf.ts';
import { addAliases } from './aliases.ts';
import type * as LocalFiles from './localFiles.ts';
import { Pacer } from '../profile/emulation.ts';
import { FileNotFoundError, httpSource, isHtmlFallback, type ByteSource, type HttpSourceOptions } from './source.ts';

/** The files of one model folder, wherever they live. */
export interface ModelFiles {
  readonly base: string;
  /** A small text file (config.json, tokenizer.json); throws FileNotFoundError when absent. */
  text(name: string): Promise<string>;
  /** A big binary file, read by ranges. The same name gives the same source (its size probe is reused). */
  bytes(name: string): ByteSource;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const HUB_URL = 'https://huggingface.co/';

/**
 * Gaps between the tensors of one load that are read through rather than split into two requests.
 * A request costs about one round trip (20-100 ms); at 10-100 MB/s that buys 0.2-10 MB, so 256 KiB
 * is always cheaper to read than to skip. Checkpoints store each layer contiguously anyway.
 */
export const MAX_GAP_BYTES = 256 * 1024;

/** "owner/name" as on the Hub (not a path: no leading dot or slash, exactly one slash). */
export function isHubRepoId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes('..');
}

export interface HttpModelOptions extends HttpSourceOptions {
  /** Hub branch, tag or commit for a bare repo id (default main). */
  revision?: string;
}

/** Base URL of a folder: absolute URLs as given, Hub repo ids on huggingface.co, paths against the page. */
export function modelBaseUrl(location: string, revision = 'main'): string {
  let url: string;
  if (/^https?:\/\//i.test(location)) url = location;
  else if (isHubRepoId(location)) url = `${HUB_URL}${location}/resolve/${encodeURIComponent(revision)}/`;
  else if (typeof globalThis.location !== 'undefined') url = new URL(location, globalThis.location.href).href;
  else throw new ShoalError('ERR_BAD_ARGS', `"${location}" is neither an http(s) URL nor a Hub repo id (owner/name)`);
  if (/\.gguf$/i.test(url)) return url; // a GGUF file is its own model: no folder slash
  return url.endsWith('/') ? url : url + '/';
}

/** Model files over HTTP: our server, Vite's, any static server with Range support, or the Hub. */
export function httpModelFiles(baseUrl: string, opts: HttpModelOptions = {}): ModelFiles {
  const base = modelBaseUrl(baseUrl, opts.revision);
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch.bind(globalThis);
  // One pacer for every file of the model: the cap is on the tab's loading, not per shard.
  const pacer = opts.pacer ?? (opts.maxBytesPerSec !== undefined ? new Pacer(opts.maxBytesPerSec) : undefined);
  const sources = new Map<string, ByteSource>();
  const urlOf = (name: string) => new URL(name, base).href;
  return {
    base,
    async text(name) {
      const url = urlOf(name);
      opts.onRequest?.({ url, range: '' });
      let res: Response;
      try {
        res = await fetchImpl(url);
      } catch (e) {
        throw new ShoalError(
          'ERR_FETCH',
          `${url}: request failed (${errorMessage(e)}); check that the server is up and reachable`,
          { cause: e },
        );
      }
      if (res.status === 404) {
        await res.body?.cancel().catch(() => {});
        throw new FileNotFoundError(`${url}: HTTP 404, file not found`);
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        throw new ShoalError('ERR_FETCH', `${url}: HTTP ${res.status} ${res.statusText}`);
      }
      if (isHtmlFallback(res, url)) {
        await res.body?.cancel().catch(() => {});
        throw new FileNotFoundError(
          `${url}: the server answered with an HTML page, not the file ` +
            '(a single-page-app fallback for a missing file?)',
        );
      }
      return res.text();
    },
    bytes(name) {
      let s = sources.get(name);
      if (!s) sources.set(name, (s = httpSource(urlOf(name), { ...opts, fetchImpl, pacer })));
      return s;
    },
  };
}

const LOCAL_FILES_MODULE = './localFiles.ts';

/**
 * Files for a location string: an http(s) URL, a local folder (Node), or a Hub repo id. In Node an
 * existing folder wins over a repo id of the same spelling; in a browser a path is a URL on this page.
 */
export async function resolveModelFiles(location: string, opts: HttpModelOptions = {}): Promise<ModelFiles> {
  const local = await nodeLocalFiles(location);
  if (local && ((await local.isLocalDir(location)) || !isHubRepoId(location))) return local.localModelFiles(location);
  return httpModelFiles(location, opts);
}

/** In Node and for a location that is not a URL: the local-files module; else null (browsers, URLs). */
async function nodeLocalFiles(location: string): Promise<typeof LocalFiles | null> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';
  if (/^https?:\/\//i.test(location) || !isNode) return null;
  // A runtime specifier that bundlers leave alone: browser bundles never contain node:fs.
  return (await import(/* @vite-ignore */ LOCAL_FILES_MODULE)) as typeof LocalFiles;
}

/** True for an existing local folder (Node only): a path that exists wins over a Hub name of the same spelling. */
export async function isLocalFolder(location: string): Promise<boolean> {
  return (await (await nodeLocalFiles(location))?.isLocalDir(location)) ?? false;
}

/** Load a layer (or any tensor set) as one read per contiguous run of bytes per file. */
export interface ReadRun {
  file: string;
  begin: number;
  end: number;
  tensors: TensorInfo[];
}

export function planReads(items: { file: string; info: TensorInfo }[], maxGapBytes = MAX_GAP_BYTES): ReadRun[] {
  const byFile = new Map<string, TensorInfo[]>();
  for (const { file, info } of items) {
    const list = byFile.get(file) ?? [];
    list.push(info);
    byFile.set(file, list);
  }
  const runs: ReadRun[] = [];
  for (const [file, list] of byFile) {
    list.sort((a, b) => a.begin - b.begin);
    let run: ReadRun | null = null;
    for (const t of list) {
      if (run && t.begin - run.end <= maxGapBytes) {
        run.end = Math.max(run.end, t.end);
        run.tensors.push(t);
      } else {
        run = { file, begin: t.begin, end: t.end, tensors: [t] };
        runs.push(run);
      }
    }
  }
  return runs;
}

/** A GGUF tensor under its Hugging Face name: which file holds it and where. */
export interface GgufEntry {
  file: string;
  info: TensorInfo;
}

/** Every tensor a model of this spec needs, in load order: embedding, layers, final norm, LM head if separate. */
export function requiredTensorNames(spec: ModelSpec): string[] {
  const names = [EMBED_TENSOR];
  for (let l = 0; l < spec.nLayers; l++) names.push(...layerTensorNames(spec, l));
  names.push(FINAL_NORM_TENSOR);
  if (!spec.tiedEmbeddings) names.push(LM_HEAD_TENSOR);
  return names;
}

/**
 * What a stage loads as one piece: the embedding, one decoder layer, or the head (final norm + LM head). The
 * persistent cache and peers trade whole units, keyed by name: 'embedding', 'layer:N' (0-based), 'head'.
 */
export type LoadUnit = string;
export const EMBED_UNIT: LoadUnit = 'embedding';
export const HEAD_UNIT: LoadUnit = 'head';
export const layerUnit = (layer: number): LoadUnit => `layer:${layer}`;

/** The file spans of one unit, in order: its bytes are these spans concatenated. */
export type UnitSpan = Pick<ReadRun, 'file' | 'begin' | 'end'>;

/** Where a unit's bytes came from: the model's files, this tab's cache, or peers (which ones). */
export interface UnitOrigin {
  source: 'origin' | 'cache' | 'peer';
  peers?: string[];
}

/**
 * Where a unit's bytes come from. The default is the model's own files (`origin`); a tab plugs in one that tries
 * its cache and its peers first (src/weights/unitFetcher.ts). Returns the bytes of each span, in order.
 */
export type UnitReader = (
  unit: LoadUnit,
  spans: UnitSpan[],
  origin: () => Promise<Uint8Array[]>,
  opts: { signal?: AbortSignal },
) => Promise<{ parts: Uint8Array[]; from: UnitOrigin }>;

type Layout =
  | { kind: 'single'; header: SafetensorsHeader }
  | { kind: 'sharded'; weightMap: Map<string, string> }
  | { kind: 'gguf'; tensors: Map<string, GgufEntry> };

/** Which part of the model a tensor belongs to, for error messages. */
function roleOf(name: string): string {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  if (m) return `layer ${m[1]}`;
  if (name === EMBED_TENSOR) return 'the token embedding';
  if (name === FINAL_NORM_TENSOR) return 'the final norm';
  if (name === LM_HEAD_TENSOR) return 'the LM head (config.json has tie_word_embeddings false)';
  return 'this load';
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const TORCH_DTYPES: Record<string, WeightDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export class ModelSource {
  readonly spec: ModelSpec;
  readonly config: Record<string, unknown>;
  readonly files: ModelFiles;
  private readonly layout: Layout;
  private readonly headers = new Map<string, Promise<SafetensorsHeader>>();
  private readonly readHeaders = new Map<string, SafetensorsHeader>(); // the settled ones, for sync size queries
  private dtypeHint: WeightDtype; // dtype assumed for tensors whose shard header is still unread
  private counters = { reads: 0, bytes: 0 };
  /** Where units' bytes come from (null: the files themselves). */
  reader: UnitReader | null = null;
  /** Where each unit last loaded came from (progress and the timeline say it). */
  private readonly fetchedFrom = new Map<LoadUnit, UnitOrigin>();

  /** Use openModel(); the constructor trusts that `layout` was validated against `spec`. */
  constructor(
    files: ModelFiles,
    config: Record<string, unknown>,
    spec: ModelSpec,
    layout: Layout,
    dtypeHint: WeightDtype,
  ) {
    this.files = files;
    this.config = config;
    this.spec = spec;
    this.layout = layout;
    this.dtypeHint = dtypeHint;
    if (layout.kind === 'single') {
      this.headers.set(SINGLE_FILE, Promise.resolve(layout.header));
      this.readHeaders.set(SINGLE_FILE, layout.header);
    }
  }

  /** Every tensor the model needs, in load order: embedding, layers, final norm, LM head if separate. */
  requiredTensors(): string[] {
    return requiredTensorNames(this.spec);
  }

  fileOf(name: string): string {
    if (this.layout.kind === 'single') return SINGLE_FILE;
    if (this.layout.kind === 'gguf') return this.ggufEntry(name).file;
    const f = this.layout.weightMap.get(name);
    if (!f)
      throw new ShoalError(
        'ERR_MISSING_TENSOR',
        `${this.files.base}${INDEX_FILE}: no shard holds tensor "${name}" (needed by ${roleOf(name)})`,
      );
    return f;
  }

  /** A shard's header, read once on first use and checked against the config then. */
  private header(file: string): Promise<SafetensorsHeader> {
    let h = this.headers.get(file);
    if (!h) {
      h = readSafetensorsHeader(this.files.bytes(file)).then((header) => {
        const mine = this.requiredTensors().filter((n) => this.fileOf(n) === file);
        aliasHeader(header, mine, this.spec);
        validateTensors(this.files.bytes(file).name, header, mine, this.spec);
        if (this.readHeaders.size === 0 && mine.length > 0) this.dtypeHint = header.tensors.get(mine[0])!.dtype;
        this.readHeaders.set(file, header);
        return header;
      });
      h.catch(() => this.headers.delete(file)); // a failed read (network) may be retried
      this.headers.set(file, h);
    }
    return h;
  }

  /** GGUF headers are all read at open, so a GGUF tensor's entry is known synchronously. */
  private ggufEntry(name: string): GgufEntry {
    const e = this.layout.kind === 'gguf' ? this.layout.tensors.get(name) : undefined;
    if (!e)
      throw new ShoalError('ERR_MISSING_TENSOR', `${this.files.base}: no tensor "${name}" (needed by ${roleOf(name)})`);
    return e;
  }

  async tensorInfo(name: string): Promise<TensorInfo> {
    if (this.layout.kind === 'gguf') return this.ggufEntry(name).info;
    const file = this.fileOf(name);
    const t = (await this.header(file)).tensors.get(name);
    if (!t)
      throw new ShoalError(
        'ERR_MISSING_TENSOR',
        `${this.files.bytes(file).name}: no tensor "${name}" (needed by ${roleOf(name)})`,
      );
    return t;
  }

  /**
   * Bytes of a tensor: exact once its file's header is read, else its config shape in the dtype of
   * the first shard read (checkpoints use one dtype throughout; the estimate turns exact on load).
   */
  private tensorBytes(name: string): number {
    if (this.layout.kind === 'gguf') {
      const e = this.layout.tensors.get(name);
      return e ? e.info.end - e.info.begin : 0;
    }
    const t = this.readHeaders.get(this.fileOf(name))?.tensors.get(name);
    if (t) return t.end - t.begin;
    const shape = expectedShape(this.spec, name);
    return shape ? tensorBytes(this.dtypeHint, shape, name) : 0;
  }

  /** Weight bytes of one decoder layer (what a stage must load and hold for it). */
  layerBytes(layer: number): number {
    this.checkLayer(layer);
    return layerTensorNames(this.spec, layer).reduce((s, n) => s + this.tensorBytes(n), 0);
  }

  embeddingBytes(): number {
    return this.tensorBytes(EMBED_TENSOR);
  }

  /** Extra bytes the last stage loads for the LM head: 0 when it is the embedding (tied). */
  headBytes(): number {
    return this.spec.tiedEmbeddings ? 0 : this.tensorBytes(LM_HEAD_TENSOR);
  }

  finalNormBytes(): number {
    return this.tensorBytes(FINAL_NORM_TENSOR);
  }

  private checkLayer(layer: number): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.spec.nLayers) {
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `layer ${layer} is out of range: the model has layers 0..${this.spec.nLayers - 1}`,
      );
    }
  }

  /** The tensors of one layer by Hugging Face name, fetched as one read where they are contiguous. */
  async loadLayer(layer: number, opts: { signal?: AbortSignal } = {}): Promise<Map<string, HostTensor>> {
    this.checkLayer(layer);
    const names = layerTensorNames(this.spec, layer);
    const tensors = await this.loadUnit(layerUnit(layer), names, opts);
    return new Map(names.map((n, i) => [n, tensors[i]]));
  }

  loadEmbedding(): Promise<HostTensor> {
    return this.loadUnit(EMBED_UNIT, [EMBED_TENSOR]).then((t) => t[0]);
  }

  /** The final norm and the LM head matrix (vocab, dim; the embedding itself when tied): one unit. */
  loadHead(): Promise<[HostTensor, HostTensor]> {
    return this.loadUnit(HEAD_UNIT, this.unitTensors(HEAD_UNIT)).then(([norm, head]) => [norm, head]);
  }

  loadFinalNorm(): Promise<HostTensor> {
    return this.loadHead().then((t) => t[0]);
  }

  loadLmHead(): Promise<HostTensor> {
    return this.loadHead().then((t) => t[1]);
  }

  /** The tensors a unit holds, in load order. */
  unitTensors(unit: LoadUnit): string[] {
    if (unit === EMBED_UNIT) return [EMBED_TENSOR];
    if (unit === HEAD_UNIT) return [FINAL_NORM_TENSOR, this.spec.tiedEmbeddings ? EMBED_TENSOR : LM_HEAD_TENSOR];
    const m = /^layer:(\d+)$/.exec(unit);
    if (!m) throw new ShoalError('ERR_BAD_ARGS', `unknown load unit "${unit}"`);
    this.checkLayer(Number(m[1]));
    return layerTensorNames(this.spec, Number(m[1]));
  }

  /** Every unit of the model, in load order. */
  units(): LoadUnit[] {
    return [EMBED_UNIT, ...Array.from({ length: this.spec.nLayers }, (_, l) => layerUnit(l)), HEAD_UNIT];
  }

  /** Bytes of a unit (what the cache stores and a peer sends). */
  unitBytes(unit: LoadUnit): number {
    return this.unitTensors(unit).reduce((s, n) => s + this.tensorBytes(n), 0);
  }

  /** The file spans a unit is read as (tensors merged into runs, as one load reads them). */
  async unitSpans(unit: LoadUnit): Promise<UnitSpan[]> {
    return (await this.runsOf(this.unitTensors(unit))).map(({ file, begin, end }) => ({ file, begin, end }));
  }

  /**
   * The model's identity for caches: where it is and each file's version (ETag, else size), so a file changed at
   * its source never matches bytes cached from the old one.
   */
  async identity(): Promise<string> {
    const files = [...new Set(this.requiredTensors().map((n) => this.fileOf(n)))].sort();
    const parts = await Promise.all(
      files.map(async (f) => {
        const src = this.files.bytes(f);
        const size = await src.size();
        return `${f}:${size}:${src.version?.() ?? ''}`;
      }),
    );
    return `${this.files.base}|${parts.join('|')}`;
  }

  private async runsOf(names: string[]): Promise<ReadRun[]> {
    const unique = [...new Set(names)];
    const items = await Promise.all(
      unique.map(async (n) => ({ file: this.fileOf(n), info: await this.tensorInfo(n) })),
    );
    return planReads(items);
  }

  /** A unit's tensors: its spans' bytes from the reader (cache, peers) or the files, cut into tensors. */
  private async loadUnit(unit: LoadUnit, names: string[], opts: { signal?: AbortSignal } = {}): Promise<HostTensor[]> {
    const runs = await this.runsOf(names);
    if (!this.reader) {
      const tensors = this.cutTensors(names, runs, await this.readRuns(runs, opts));
      this.fetchedFrom.set(unit, { source: 'origin' });
      return tensors;
    }
    const spans = runs.map(({ file, begin, end }) => ({ file, begin, end }));
    const { parts, from } = await this.reader(unit, spans, () => this.readRuns(runs, opts), opts);
    this.fetchedFrom.set(unit, from);
    return this.cutTensors(names, runs, parts);
  }

  /** Where a unit last loaded came from (undefined before its first load). */
  sourceOf(unit: LoadUnit): UnitOrigin | undefined {
    return this.fetchedFrom.get(unit);
  }

  /** Read each run from its file (the origin). */
  private readRuns(runs: ReadRun[], opts: { signal?: AbortSignal }): Promise<Uint8Array[]> {
    return Promise.all(
      runs.map(async (run) => {
        opts.signal?.throwIfAborted();
        const bytes = await this.files.bytes(run.file).read(run.begin, run.end - run.begin, { signal: opts.signal });
        this.counters.reads++;
        this.counters.bytes += bytes.length;
        return bytes;
      }),
    );
  }

  private cutTensors(names: string[], runs: ReadRun[], bytes: Uint8Array[]): HostTensor[] {
    const byName = new Map<string, HostTensor>();
    runs.forEach((run, i) => {
      if (bytes[i].length !== run.end - run.begin)
        throw new ShoalError(
          'ERR_FETCH',
          `${run.file}: got ${bytes[i].length} bytes for a span of ${run.end - run.begin}`,
        );
      for (const t of run.tensors) {
        const data = bytes[i].subarray(t.begin - run.begin, t.end - run.begin);
        byName.set(t.name, {
          name: t.name,
          dtype: t.dtype,
          shape: [...t.shape],
          data: t.permutedHeads ? unpermuteHeads(data, t.shape[0], t.permutedHeads) : data.slice(),
        });
      }
    });
    return names.map((n) => byName.get(n)!);
  }

  /**
   * Fetch exactly these tensors, in this order, from the files. Tensors are grouped per file and merged into runs
   * (gaps up to MAX_GAP_BYTES read through), one read per run. Each returned tensor owns a fresh buffer at offset 0,
   * so Float32Array/Uint16Array views on it are always aligned.
   */
  async loadTensors(names: string[], opts: { signal?: AbortSignal } = {}): Promise<HostTensor[]> {
    const runs = await this.runsOf(names);
    return this.cutTensors(names, runs, await this.readRuns(runs, opts));
  }

  /** Tensor-data reads issued and bytes they returned (headers and config not counted). */
  stats(): { reads: number; bytes: number } {
    return { ...this.counters };
  }

  resetStats(): void {
    this.counters = { reads: 0, bytes: 0 };
  }
}

/** Required names a published layout stores under another name become aliases of the stored tensor (aliases.ts). */
function aliasHeader(header: SafetensorsHeader, required: string[], spec: ModelSpec): void {
  addAliases(header.tensors, required, {
    metadata: header.metadata,
    tied: spec.tiedEmbeddings,
    rename: (t, name) => ({ ...t, name }),
  });
}

/** Every required tensor present in `header` has the shape config.json implies; missing ones are named. */
function validateTensors(file: string, header: SafetensorsHeader, required: string[], spec: ModelSpec): void {
  for (const name of required) {
    const t = header.tensors.get(name);
    if (!t)
      throw new ShoalError(
        'ERR_MISSING_TENSOR',
        `${file}: no tensor "${name}" (needed by ${roleOf(name)}); the checkpoint does not match config.json`,
      );
    const want = expectedShape(spec, name);
    if (want && !sameShape(t.shape, want)) {
      throw new ShoalError(
        'ERR_BAD_SAFETENSORS',
        `${file}: tensor "${name}" has shape [${t.shape.join(', ')}] ` +
          `but config.json implies [${want.join(', ')}] (${roleOf(name)})`,
      );
    }
  }
}

function parseJson(text: string, where: string, code: 'ERR_BAD_CONFIG' | 'ERR_BAD_SAFETENSORS'): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ShoalError(code, `${where} is not valid JSON (${errorMessage(e)})`);
  }
}

/** A shard file name from an index: a plain relative name, never a URL or a way out of the folder. */
function checkShardName(indexName: string, tensor: string, file: unknown): string {
  if (
    typeof file !== 'string' ||
    file === '' ||
    file.includes('..') ||
    file.startsWith('/') ||
    file.includes(':') ||
    file.includes('\\')
  ) {
    throw new ShoalError(
      'ERR_BAD_SAFETENSORS',
      `${indexName}: weight_map entry for "${tensor}" names an invalid shard file ${JSON.stringify(file)}`,
    );
  }
  return file;
}

/**
 * Open a model folder: config.json -> ModelSpec, then the shard index or the single file. A single
 * file's header is read and checked now; shard headers are read when a load first touches them.
 */
export async function openModel(files: ModelFiles): Promise<ModelSource> {
  const configText = await files.text('config.json').catch((e: unknown) => {
    if (e instanceof FileNotFoundError)
      throw new ShoalError(
        'ERR_BAD_CONFIG',
        `${files.base}: no config.json; a model folder needs config.json and model.safetensors (or a shard index)`,
      );
    throw e;
  });
  const config = parseJson(configText, `${files.base} config.json`, 'ERR_BAD_CONFIG');
  const spec = parseConfig(config);
  const rawConfig = config as Record<string, unknown>;
  const dtypeName = rawConfig.torch_dtype ?? rawConfig.dtype;
  const torchDtype = typeof dtypeName === 'string' ? TORCH_DTYPES[dtypeName] : undefined;

  let indexText: string | null = null;
  try {
    indexText = await files.text(INDEX_FILE);
  } catch (e) {
    if (!(e instanceof FileNotFoundError)) throw e;
  }

  if (indexText === null) {
    const src = files.bytes(SINGLE_FILE);
    const header = await readSafetensorsHeader(src).catch((e: unknown) => {
      if (e instanceof FileNotFoundError)
        throw new ShoalError(
          'ERR_MISSING_TENSOR',
          `${files.base}: neither ${SINGLE_FILE} nor ${INDEX_FILE} exists; the folder holds no weights`,
        );
      throw e;
    });
    aliasHeader(header, requiredTensorNames(spec), spec);
    const model = new ModelSource(
      files,
      rawConfig,
      spec,
      { kind: 'single', header },
      header.tensors.get(EMBED_TENSOR)?.dtype ?? torchDtype ?? 'F32',
    );
    validateTensors(src.name, header, model.requiredTensors(), spec);
    return model;
  }

  const indexName = `${files.base}${INDEX_FILE}`;
  const index = parseJson(indexText, indexName, 'ERR_BAD_SAFETENSORS') as { weight_map?: unknown };
  const wm = index?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm))
    throw new ShoalError('ERR_BAD_SAFETENSORS', `${indexName}: missing "weight_map" object`);
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(wm as Record<string, unknown>))
    weightMap.set(tensor, checkShardName(indexName, tensor, file));
  // The shard holding an aliased tensor holds its alias (the header aliases it again when read).
  addAliases(weightMap, requiredTensorNames(spec), { tied: spec.tiedEmbeddings, rename: (file) => file });

  const model = new ModelSource(files, rawConfig, spec, { kind: 'sharded', weightMap }, torchDtype ?? 'F32');
  for (const name of model.requiredTensors()) model.fileOf(name); // names the first tensor no shard holds
  // Read the first layer's shard now: it checks the shard format early and tells the dtype of the rest.
  await model.tensorInfo(layerTensorNames(spec, 0)[0]);
  return model;
}
