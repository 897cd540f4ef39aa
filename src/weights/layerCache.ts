// The persistent weight cache of one tab, in the Origin Private File System: one entry per load unit (embedding,
// layer, head) keyed by the model's identity, written as a partial file and committed only after its size and hash
// check, so an interrupted download never leaves an entry that is later used.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { errorMessage } from '../errors.ts';
import { Emitter } from '../mesh/emitter.ts';
import { sha256Hex } from './digest.ts';

/** The few file operations the cache needs: OPFS in a browser (opfsDir), a Map in Node tests (memoryDir). */
export interface CacheDir {
  names(): Promise<string[]>;
  /** The file's bytes [offset, offset + length) (all of it without a span); null when absent. */
  read(name: string, span?: { offset: number; length: number }): Promise<Uint8Array | null>;
  size(name: string): Promise<number | null>;
  /** When the file was last written, ms since the epoch; null when absent. */
  modified(name: string): Promise<number | null>;
  write(name: string, bytes: Uint8Array): Promise<void>;
  move(from: string, to: string): Promise<void>;
  remove(name: string): Promise<void>;
}

export interface CacheEntry {
  key: string;
  bytes: number;
  sha256: string;
}

export type CacheNotice = { kind: 'full' | 'corrupt' | 'unavailable' | 'error'; message: string };

/** Room left on the disk beyond an entry before the cache stops writing (other sites and the browser need some). */
const FREE_MARGIN_BYTES = 32 * 1024 * 1024;
const DIR_NAME = 'shoal-weights';
/**
 * A partial file older than this is an interrupted write. Younger ones may belong to another tab of the same
 * browser profile writing right now (tabs of one origin share the OPFS directory), so they are left alone.
 */
const STALE_PART_MS = 120_000;

const idOf = (key: string): string => bytesToHex(sha256(utf8ToBytes(key))).slice(0, 32);

export class LayerCache extends Emitter<{ changed: []; notice: [CacheNotice] }> {
  private readonly index = new Map<string, CacheEntry>();
  /** Names this tab's partial files apart from those of other tabs of the same profile. */
  private readonly nonce = Math.random().toString(36).slice(2, 10);
  /** Writes run one at a time (each checks the free space the previous one left). */
  private writing: Promise<unknown> = Promise.resolve();
  /** A clear in progress: reads and writes wait for it (a cold run's loads start right behind it). */
  private clearing: Promise<void> = Promise.resolve();
  /** Bumped by clear(): a write that started before a clear never commits after it. */
  private generation = 0;
  private clearingNow = false;
  /** False after the disk filled or a write failed: the tab runs on without a cache. */
  enabled = true;
  /** Whether the browser granted persistent storage (else it may evict the cache under pressure). */
  persisted = false;

  private constructor(
    private readonly dir: CacheDir,
    private readonly estimate: () => Promise<{ quota?: number; usage?: number } | null>,
  ) {
    super();
  }

  /**
   * Open the cache: the tab's OPFS directory unless one is given. Entries not committed (a tab closed mid-write)
   * and entries whose files do not match their record are deleted now. Null where OPFS is missing (an insecure
   * context, an old browser): the tab then loads without a cache.
   */
  static async open(
    dir?: CacheDir,
    estimate?: () => Promise<{ quota?: number; usage?: number } | null>,
  ): Promise<LayerCache | null> {
    const d = dir ?? (await opfsDir());
    if (!d) return null;
    const storage = globalThis.navigator?.storage;
    const cache = new LayerCache(d, estimate ?? (async () => (storage?.estimate ? storage.estimate() : null)));
    if (!dir && storage?.persist) cache.persisted = await storage.persist().catch(() => false);
    await cache.scan();
    return cache;
  }

  private async scan(): Promise<void> {
    const names = new Set(await this.dir.names());
    for (const name of names) {
      const orphan = name.endsWith('.part') || (name.endsWith('.bin') && !names.has(name.replace(/\.bin$/, '.json')));
      if (orphan) {
        if (Date.now() - ((await this.dir.modified(name)) ?? 0) > STALE_PART_MS) await this.dir.remove(name);
      } else if (name.endsWith('.json')) {
        const meta = await this.committed(name.slice(0, -5));
        if (meta) this.index.set(meta.key, meta);
      }
    }
  }

  /**
   * The entry with this id if it is committed and whole (its record, and data of the recorded size); else its files
   * are deleted and null returned. A record whose data is not there yet is left alone when young: another tab of this
   * profile may be between writing the record and the commit.
   */
  private async committed(id: string): Promise<CacheEntry | null> {
    const meta = await this.readMeta(`${id}.json`);
    const size = await this.dir.size(`${id}.bin`);
    if (meta && size === meta.bytes && idOf(meta.key) === id) return meta;
    const young = Date.now() - ((await this.dir.modified(`${id}.json`)) ?? 0) < STALE_PART_MS;
    if (!(meta && size === null && young)) {
      await this.dir.remove(`${id}.json`).catch(() => undefined);
      await this.dir.remove(`${id}.bin`).catch(() => undefined);
    }
    return null;
  }

  private async readMeta(name: string): Promise<CacheEntry | null> {
    try {
      const raw = await this.dir.read(name);
      const m = raw && (JSON.parse(new TextDecoder().decode(raw)) as Partial<CacheEntry>);
      if (m && typeof m.key === 'string' && typeof m.sha256 === 'string' && Number.isSafeInteger(m.bytes))
        return { key: m.key, bytes: m.bytes!, sha256: m.sha256 };
    } catch {
      // unreadable or not JSON: the caller deletes the entry
    }
    return null;
  }

  entries(): CacheEntry[] {
    return [...this.index.values()];
  }

  entry(key: string): CacheEntry | undefined {
    return this.index.get(key);
  }

  usedBytes(): number {
    let n = 0;
    for (const e of this.index.values()) n += e.bytes;
    return n;
  }

  /**
   * A committed entry's bytes, checked against its recorded hash (and `expectSha`, the plan's, when given). A
   * mismatch deletes the entry, says so, and returns null: the caller fetches the unit elsewhere.
   */
  async get(key: string, expectSha?: string): Promise<Uint8Array | null> {
    // Never waits for a clear: its index is empty at once (a cold run's loads start right behind it).
    const e = this.index.get(key) ?? (this.clearingNow ? undefined : await this.adopt(key));
    if (!e) return null;
    const bytes = await this.dir.read(`${idOf(key)}.bin`).catch(() => null);
    const sha = bytes && bytes.length === e.bytes ? await sha256Hex(bytes) : null;
    if (bytes && sha === e.sha256 && (!expectSha || sha === expectSha)) return bytes;
    const why = !bytes
      ? 'is missing'
      : bytes.length !== e.bytes
        ? `holds ${bytes.length} of ${e.bytes} bytes`
        : sha !== e.sha256
          ? 'does not match its hash'
          : 'is another version than the plan names';
    await this.delete(key);
    this.emit('notice', {
      kind: 'corrupt',
      message: `cached ${key.split('#').pop()} ${why}: dropped, fetching it again`,
    });
    return null;
  }

  /** An entry another tab of this profile committed since this one opened the cache. */
  private async adopt(key: string): Promise<CacheEntry | undefined> {
    if ((await this.dir.size(`${idOf(key)}.json`)) === null) return undefined;
    const meta = await this.committed(idOf(key));
    if (!meta || meta.key !== key) return undefined;
    this.index.set(key, meta);
    this.emit('changed');
    return meta;
  }

  /** Part of a committed entry, unchecked (a peer asking for it checks the whole unit's hash). */
  async readRange(key: string, offset: number, length: number): Promise<Uint8Array | null> {
    const e = this.index.get(key);
    if (!e || offset < 0 || length < 0 || offset + length > e.bytes) return null;
    return this.dir.read(`${idOf(key)}.bin`, { offset, length }).catch(() => null);
  }

  /**
   * Store a unit whose hash the caller computed: written as a partial file, read back and checked, then committed.
   * A full disk (by estimate or by a failed write) turns the cache off with a notice; never throws.
   */
  put(key: string, bytes: Uint8Array, sha: string): Promise<boolean> {
    const gen = this.generation;
    const run = Promise.all([this.writing, this.clearing]).then(() =>
      gen === this.generation ? this.write(key, bytes, sha) : false,
    );
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async write(key: string, bytes: Uint8Array, sha: string): Promise<boolean> {
    if (!this.enabled) return false;
    if (this.index.get(key)?.sha256 === sha) return true;
    const gen = this.generation;
    const id = idOf(key);
    const part = `${id}.${this.nonce}.part`;
    try {
      const est = await this.estimate().catch(() => null);
      if (est?.quota !== undefined && est.quota - (est.usage ?? 0) < bytes.length + FREE_MARGIN_BYTES) {
        const freeMb = ((est.quota - (est.usage ?? 0)) / 1e6).toFixed(0);
        this.disable(
          'full',
          `storage is nearly full (${freeMb} MB free): the weight cache is off, layers load from the network`,
        );
        return false;
      }
      await this.dir.write(part, bytes);
      const back = await this.dir.read(part);
      if (!back || back.length !== bytes.length || (await sha256Hex(back)) !== sha)
        throw new Error('the written entry does not read back the same');
      const meta: CacheEntry = { key, bytes: bytes.length, sha256: sha };
      await this.dir.write(`${id}.json`, new TextEncoder().encode(JSON.stringify(meta)));
      if (gen !== this.generation) throw new Error('superseded'); // cleared meanwhile: nothing to commit
      await this.dir.move(part, `${id}.bin`); // the commit
      this.index.set(key, meta);
      this.emit('changed');
      return true;
    } catch (e) {
      await this.dir.remove(part).catch(() => undefined);
      if (gen !== this.generation) return false;
      // Another tab of this profile committed the same unit meanwhile: that is the entry we wanted.
      const theirs = await this.committed(id).catch(() => null);
      if (theirs?.key === key && theirs.sha256 === sha) {
        this.index.set(key, theirs);
        this.emit('changed');
        return true;
      }
      const full = e instanceof DOMException && e.name === 'QuotaExceededError';
      this.disable(
        full ? 'full' : 'error',
        full
          ? 'storage is full: the weight cache is off, layers load from the network'
          : `the weight cache failed to write (${errorMessage(e)}): it is off, layers load from the network`,
      );
      return false;
    }
  }

  /** Resolves once the writes started so far have finished. */
  async settled(): Promise<void> {
    await Promise.all([this.writing, this.clearing]);
  }

  private disable(kind: CacheNotice['kind'], message: string): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.emit('notice', { kind, message });
  }

  async delete(key: string): Promise<void> {
    this.index.delete(key);
    await this.removeFiles(idOf(key)).catch(() => undefined);
    this.emit('changed');
  }

  /** Delete every entry (the page's Clear cache control, Run from cold). The cache stays usable. */
  clear(): Promise<void> {
    // At once: nothing reads an entry being deleted, and writes under way do not commit (generation).
    this.index.clear();
    this.generation++;
    this.clearingNow = true;
    const gen = this.generation;
    this.clearing = (async () => {
      for (const name of await this.dir.names()) await this.dir.remove(name).catch(() => undefined);
      if (gen === this.generation) this.clearingNow = false;
      this.enabled = true;
      this.emit('changed');
    })();
    return this.clearing;
  }

  private async removeFiles(id: string): Promise<void> {
    for (const ext of ['.bin', '.json']) await this.dir.remove(id + ext);
  }
}

/** The tab's OPFS directory for weights, or null where OPFS is not available. */
async function opfsDir(): Promise<CacheDir | null> {
  const storage = globalThis.navigator?.storage;
  if (!storage?.getDirectory) return null;
  let dir: FileSystemDirectoryHandle;
  try {
    dir = await (await storage.getDirectory()).getDirectoryHandle(DIR_NAME, { create: true });
  } catch {
    return null; // a private window or a policy refused it
  }
  const file = async (name: string) => {
    try {
      return await (await dir.getFileHandle(name)).getFile();
    } catch {
      return null;
    }
  };
  const opfs: CacheDir = {
    async names() {
      const out: string[] = [];
      for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) out.push(name);
      return out;
    },
    async read(name, span) {
      const f = await file(name);
      if (!f) return null;
      const blob = span ? f.slice(span.offset, span.offset + span.length) : f;
      return new Uint8Array(await blob.arrayBuffer());
    },
    async size(name) {
      return (await file(name))?.size ?? null;
    },
    async modified(name) {
      return (await file(name))?.lastModified ?? null;
    },
    async write(name, bytes) {
      const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
      try {
        await w.write(bytes as Uint8Array<ArrayBuffer>);
        await w.close(); // Chromium writes to a swap file and swaps it in here: all or nothing
      } catch (e) {
        await w.abort().catch(() => undefined);
        throw e;
      }
    },
    async move(from, to) {
      const h = (await dir.getFileHandle(from)) as FileSystemFileHandle & { move?: (n: string) => Promise<void> };
      if (h.move) return h.move(to);
      // No move(): copy, then drop the partial file (the .json written before makes the copy the commit).
      const bytes = await opfs.read(from);
      await opfs.write(to, bytes!);
      await opfs.remove(from);
    },
    async remove(name) {
      await dir.removeEntry(name).catch((e: unknown) => {
        if (!(e instanceof DOMException && e.name === 'NotFoundError')) throw e;
      });
    },
  };
  return opfs;
}

/** A CacheDir in memory. A test double: Node has no OPFS; the browser tests run the real one. */
export function memoryDir(files = new Map<string, Uint8Array>()): CacheDir & { files: Map<string, Uint8Array> } {
  return {
    files,
    names: () => Promise.resolve([...files.keys()]),
    read: (name, span) => {
      const f = files.get(name);
      return Promise.resolve(f ? (span ? f.slice(span.offset, span.offset + span.length) : f.slice()) : null);
    },
    size: (name) => Promise.resolve(files.get(name)?.length ?? null),
    modified: (name) => Promise.resolve(files.has(name) ? 0 : null), // every file "old": tests see the cleanup at once
    write: (name, bytes) => Promise.resolve(void files.set(name, bytes.slice())),
    move: (from, to) => {
      const f = files.get(from);
      if (!f) return Promise.reject(new Error(`${from}: no such file`));
      files.delete(from);
      files.set(to, f);
      return Promise.resolve();
    },
    remove: (name) => Promise.resolve(void files.delete(name)),
  };
}
