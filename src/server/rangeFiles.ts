// Static files with HTTP Range support (206 partial content), shared by the Node server and the Vite plugin.
import { createReadStream, promises as fsp } from 'node:fs';
import { pipeline } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.safetensors': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
};

export interface ByteRange {
  start: number;
  end: number;
} // inclusive end, as in the header

/** Parse a single-range `Range: bytes=a-b` header against a file size; null = not satisfiable, undefined = no or
 * ignored header. */
export function parseRange(header: string | undefined, size: number): ByteRange | null | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // multi-range or malformed: serve the whole file (RFC 9110 allows ignoring Range)
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return null;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    // last < first is not a valid range-spec at all: RFC 9110 14.1.1 says ignore the header.
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) return null;
  return { start, end };
}

export interface ServeOptions {
  /** Optional throttle per response (emulated slow disk/network), bytes per second. */
  bytesPerSecFor?: (req: IncomingMessage) => number | undefined;
}

/**
 * Connect-style middleware serving files under `root` at URL prefix `prefix` (e.g. '/models/').
 * Calls next() when the path is outside the prefix or the file does not exist.
 */
export function serveFiles(prefix: string, root: string, opts: ServeOptions = {}) {
  const absRoot = resolve(root);
  return async (req: IncomingMessage, res: ServerResponse, next: () => void): Promise<void> => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      if (!url.pathname.startsWith(prefix) || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
      let rel: string;
      try {
        rel = decodeURIComponent(url.pathname.slice(prefix.length));
      } catch {
        res.statusCode = 400;
        res.end('bad path');
        return;
      }
      const path = resolve(join(absRoot, rel));
      if (path !== absRoot && !path.startsWith(absRoot + sep)) {
        res.statusCode = 403;
        res.end('forbidden');
        return;
      }
      let st;
      try {
        st = await fsp.stat(path);
      } catch {
        return next();
      }
      if (!st.isFile()) return next();
      const size = st.size;
      const range = parseRange(req.headers.range, size);
      res.setHeader('Accept-Ranges', 'bytes');
      res.setHeader('Content-Type', MIME[extname(path)] ?? 'application/octet-stream');
      res.setHeader('Cache-Control', 'no-cache');
      // The file's version: tabs key their persistent weight cache by it, so a changed file is never served stale.
      res.setHeader('ETag', `W/"${size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`);
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, Accept-Ranges, ETag');
      if (range === null) {
        res.statusCode = 416;
        res.setHeader('Content-Range', `bytes */${size}`);
        res.end();
        return;
      }
      const start = range ? range.start : 0;
      const end = range ? range.end : size - 1;
      res.statusCode = range ? 206 : 200;
      if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      res.setHeader('Content-Length', String(end - start + 1));
      if (req.method === 'HEAD' || size === 0) {
        res.end();
        return;
      }
      const rate = opts.bytesPerSecFor?.(req);
      if (!rate || rate <= 0) {
        // pipeline, not pipe: a client that hangs up mid-body must also close the file.
        pipeline(createReadStream(path, { start, end }), res, () => {});
        return;
      }
      sendPaced(path, start, end, rate, res);
    } catch {
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    }
  };
}

/**
 * Send bytes [start, end] of the file at `rate` bytes/s: each chunk goes out only when the budget allows all bytes
 * sent so far, so the client never sees more than rate * elapsed (no burst of a whole 64 KiB read buffer).
 * Chunks of ~20 ms at the rate keep the pacing smooth.
 */
function sendPaced(path: string, start: number, end: number, rate: number, res: ServerResponse): void {
  const chunkBytes = Math.max(1024, Math.min(64 * 1024, Math.floor(rate / 50)));
  const stream = createReadStream(path, { start, end, highWaterMark: chunkBytes });
  stream.on('error', () => res.destroy());
  const t0 = Date.now();
  let sent = 0;
  let held = false; // a chunk waits for its time; the stream may still emit 'end' meanwhile
  let ended = false;
  stream.on('data', (chunk) => {
    sent += chunk.length;
    const dueMs = (sent / rate) * 1000 - (Date.now() - t0);
    if (dueMs <= 0) {
      res.write(chunk);
      return;
    }
    stream.pause();
    held = true;
    setTimeout(() => {
      held = false;
      if (res.destroyed) return;
      res.write(chunk);
      if (ended) res.end();
      else stream.resume();
    }, Math.ceil(dueMs));
  });
  stream.on('end', () => {
    ended = true;
    if (!held) res.end();
  });
  res.on('close', () => stream.destroy());
}
