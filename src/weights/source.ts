// Byte sources for weight files: the ByteSource contract, HTTP Range reads (with an optional pace cap) and an
// in-memory source.
import { ShoalError, errorMessage } from '../errors.ts';
import { Pacer } from '../profile/emulation.ts';

/** Random access to one file's bytes. `read` returns exactly `length` bytes or throws. */
export interface ByteSource {
  readonly name: string;
  size(): Promise<number>;
  /** The file's version as its server names it (ETag, else Last-Modified), known after size(); null if none. */
  version?(): string | null;
  read(offset: number, length: number, opts?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

/**
 * Bytes a size probe asks for. The probe is a Range GET (not a HEAD: it proves Range support at
 * once), and since the next read is almost always the safetensors header, its body is kept and
 * serves any later read that falls inside it. 64 KiB holds the header of every model we target
 * except the largest sharded ones, which then cost one more request.
 */
export const PROBE_BYTES = 64 * 1024;

/** A file that does not exist (HTTP 404, ENOENT): callers probing optional files (a shard index) catch this one. */
export class FileNotFoundError extends ShoalError {
  readonly notFound = true;
  constructor(message: string) {
    super('ERR_FETCH', message);
  }
}

/**
 * Dev servers and static hosts with a single-page-app fallback (Vite, Netlify...) answer a missing
 * file with index.html and status 200; weights and JSON are never served as text/html.
 */
export function isHtmlFallback(res: Response, url: string): boolean {
  return /text\/html/i.test(res.headers.get('Content-Type') ?? '') && !/\.html?(\?|#|$)/i.test(url);
}

export interface HttpSourceOptions {
  fetchImpl?: typeof fetch;
  /** Client-side cap on delivered bytes/s (emulation knob). Ignored when `pacer` is given. */
  maxBytesPerSec?: number;
  /** A pacer shared with other sources (e.g. all shards of one model). */
  pacer?: Pacer;
  /** Called with each chunk's byte count as it is delivered (progress, counting). */
  onBytes?: (n: number) => void;
  /** Called once per HTTP request issued (tests count requests with it). */
  onRequest?: (info: { url: string; range: string }) => void;
}

/** Parse `bytes a-b/total` (total may be `*`). */
function parseContentRange(v: string | null): { start: number; end: number; total: number | null } | null {
  if (!v) return null;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return null;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
}

/** One Range request; a network failure (not an abort) becomes an ERR_FETCH a user can act on. */
async function fetchRange(
  fetchImpl: typeof fetch,
  url: string,
  range: string,
  signal: AbortSignal | undefined,
): Promise<Response> {
  try {
    return await fetchImpl(url, { headers: { Range: range }, signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ShoalError(
      'ERR_FETCH',
      `${url}: request failed (${errorMessage(e)}); check that the server is up and reachable ` +
        '(and sends CORS headers when on another origin)',
      { cause: e },
    );
  }
}

/** Why an answer to a Range request other than 206 or 416 is unusable. */
function statusError(url: string, res: Response): Error {
  if (res.status === 200) {
    // The server ignored Range: reading on would pull the whole (possibly multi-gigabyte) file.
    if (isHtmlFallback(res, url))
      return new FileNotFoundError(
        `${url}: the server answered with an HTML page, not the file ` +
          '(a single-page-app fallback for a missing file?)',
      );
    return new ShoalError(
      'ERR_NO_RANGE_SUPPORT',
      `${url}: the server answered 200 (the whole file) to a Range request instead of 206. ` +
        'Serve weights from a server with HTTP Range support (npm start, Vite, the Hugging Face Hub, nginx, ' +
        '`npx http-server`), or pass a local folder path; ' +
        'if a proxy or CDN sits in between, make it forward the Range header.',
    );
  }
  if (res.status === 404) return new FileNotFoundError(`${url}: HTTP 404, file not found; check the model URL`);
  const hint = res.status === 401 || res.status === 403 ? ' (access denied: gated or private model?)' : '';
  return new ShoalError('ERR_FETCH', `${url}: HTTP ${res.status} ${res.statusText}${hint}`);
}

/** Stream a response body into one preallocated buffer, pacing delivery when a cap is set. */
async function readBody(
  url: string,
  res: Response,
  expected: number,
  o: { pacer?: Pacer; onBytes?: (n: number) => void; signal?: AbortSignal },
): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  if (!res.body) {
    if (expected !== 0) throw new ShoalError('ERR_FETCH', `${url}: empty response body`);
    return out;
  }
  const reader = res.body.getReader();
  let got = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (got + value.length > expected)
        throw new ShoalError(
          'ERR_FETCH',
          `${url}: the server sent more than the ${expected} bytes its Content-Range announced`,
        );
      out.set(value, got);
      got += value.length;
      if (o.pacer) await o.pacer.take(value.length, o.signal);
      o.onBytes?.(value.length);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof ShoalError || o.signal?.aborted) throw e;
    throw new ShoalError(
      'ERR_FETCH',
      `${url}: the connection broke after ${got} of ${expected} bytes (${errorMessage(e)})`,
      { cause: e },
    );
  }
  if (got !== expected)
    throw new ShoalError('ERR_FETCH', `${url}: the response ended after ${got} of ${expected} bytes`);
  return out;
}

/**
 * A file over HTTP, read with `Range: bytes=a-b` requests only; never downloads the whole file by accident.
 * Kept as one factory: rangeGet, probe and the reader share what the first answers taught (size, probed prefix).
 */
export function httpSource(url: string, opts: HttpSourceOptions = {}): ByteSource {
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch.bind(globalThis);
  const pacer = opts.pacer ?? (opts.maxBytesPerSec !== undefined ? new Pacer(opts.maxBytesPerSec) : undefined);
  let knownSize: number | null = null;
  let version: string | null = null;
  let prefix: Uint8Array | null = null; // bytes [0, prefix.length) kept from the size probe
  let probing: Promise<number> | null = null;

  /** One Range request for [offset, offset + length), clamped at the end of the file when `allowShort`. */
  async function rangeGet(
    offset: number,
    length: number,
    allowShort: boolean,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    const range = `bytes=${offset}-${offset + length - 1}`;
    opts.onRequest?.({ url, range });
    const res = await fetchRange(fetchImpl, url, range, signal);
    if (res.status === 416) {
      await res.body?.cancel().catch(() => {});
      const total = /^bytes \*\/(\d+)$/.exec(res.headers.get('Content-Range')?.trim() ?? '');
      if (total) knownSize = Number(total[1]);
      // An empty file answers any range with 416; the probe then simply learns the size 0.
      if (allowShort && offset === 0 && knownSize === 0) return new Uint8Array(0);
      throw new ShoalError(
        'ERR_FETCH',
        `${url}: bytes ${offset}..${offset + length} lie past the end of the file` +
          (total ? ` (${total[1]} bytes)` : ''),
      );
    }
    if (res.status !== 206) {
      await res.body?.cancel().catch(() => {});
      throw statusError(url, res);
    }
    const cr = parseContentRange(res.headers.get('Content-Range'));
    if (!cr || cr.start !== offset) {
      await res.body?.cancel().catch(() => {});
      throw new ShoalError(
        'ERR_FETCH',
        `${url}: 206 response with a missing or mismatched Content-Range ` +
          `(${res.headers.get('Content-Range') ?? 'none'}) for ${range}; ` +
          'the server (or a CORS policy hiding the header) is not usable for Range reads',
      );
    }
    if (cr.total !== null) knownSize = cr.total;
    version ??= res.headers.get('ETag') ?? res.headers.get('Last-Modified');
    const expected = cr.end - cr.start + 1;
    if (expected > length || (!allowShort && expected !== length)) {
      await res.body?.cancel().catch(() => {});
      throw new ShoalError(
        'ERR_FETCH',
        `${url}: asked for ${length} bytes at ${offset}, the server returned ${expected} ` +
          `(Content-Range ${res.headers.get('Content-Range')}); ` +
          'the file is shorter than its header says or changed while reading',
      );
    }
    return readBody(url, res, expected, { pacer, onBytes: opts.onBytes, signal });
  }

  function probe(): Promise<number> {
    probing ??= rangeGet(0, PROBE_BYTES, true).then(
      (bytes) => {
        prefix = bytes;
        if (knownSize === null) {
          // `bytes 0-N/*`: size unknown; only a short answer proves we saw the whole file.
          if (bytes.length < PROBE_BYTES) knownSize = bytes.length;
          else throw new ShoalError('ERR_FETCH', `${url}: the server does not report the file size in Content-Range`);
        }
        return knownSize;
      },
      (e: unknown) => {
        probing = null; // let a later call retry a transient failure
        throw e;
      },
    );
    return probing;
  }

  return {
    name: url,
    version: () => version,
    async size() {
      if (knownSize !== null) return knownSize;
      return probe();
    },
    async read(offset, length, readOpts) {
      checkSpan(url, offset, length);
      if (length === 0) return new Uint8Array(0);
      // Served from the probe's body; its bytes were reported to onBytes when they arrived.
      if (prefix && offset + length <= prefix.length) return prefix.slice(offset, offset + length);
      if (prefix && offset < prefix.length) {
        // A header longer than the probe: fetch only the part the probe did not bring.
        const rest = await rangeGet(prefix.length, offset + length - prefix.length, false, readOpts?.signal);
        const out = new Uint8Array(length);
        out.set(prefix.subarray(offset), 0);
        out.set(rest, prefix.length - offset);
        return out;
      }
      return rangeGet(offset, length, false, readOpts?.signal);
    },
  };
}

export function checkSpan(name: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ShoalError('ERR_BAD_ARGS', `${name}: invalid byte span offset=${offset} length=${length}`);
  }
}

/** A ByteSource over bytes already in memory (tests, freshly generated models). */
export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: () => Promise.resolve(bytes.length),
    // eslint-disable-next-line @typescript-eslint/require-await -- async so that a bad span rejects, as a fetch would
    async read(offset, length) {
      checkSpan(name, offset, length);
      if (offset + length > bytes.length)
        throw new ShoalError(
          'ERR_FETCH',
          `${name}: bytes ${offset}..${offset + length} lie past the end of the file (${bytes.length} bytes)`,
        );
      return bytes.slice(offset, offset + length);
    },
  };
}
