// The production server behind `npm start`: the built app (dist/), models and fixtures with Range, and
// signaling; plain HTTP on localhost and HTTPS (self-signed) on all interfaces for the LAN.
import { createServer as createHttp, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { serveFiles } from './rangeFiles.ts';
import { SignalingServer } from './signaling.ts';
import { ApiRelay, type ApiRelayOptions } from './apiRelay.ts';

/** Smallest emulated download rate honoured, bytes/s (guards against ?bps=1 stalling a socket for hours). */
export const MIN_THROTTLE_BYTES_PER_SEC = 1024;

/** Per-request download cap for emulating slow devices: `?bps=N` on the URL or an `x-shoal-bps: N` header. */
export function throttleFromRequest(req: IncomingMessage): number | undefined {
  let raw: string | null | undefined;
  try {
    raw = new URL(req.url ?? '/', 'http://x').searchParams.get('bps');
  } catch {
    raw = undefined;
  }
  const header = req.headers['x-shoal-bps'];
  raw ??= Array.isArray(header) ? header[0] : header;
  const bps = Number(raw);
  return raw && Number.isFinite(bps) && bps > 0 ? Math.max(MIN_THROTTLE_BYTES_PER_SEC, bps) : undefined;
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void | Promise<void>;

export interface ShoalServerOptions {
  distDir: string;
  modelsDir: string;
  fixturesDir?: string;
  /** Plain HTTP port (0 = any free port), bound to httpHost (default localhost only). */
  httpPort: number;
  httpHost?: string;
  /** HTTPS port (0 = any), bound to httpsHost (default all interfaces); null disables HTTPS. */
  httpsPort: number | null;
  httpsHost?: string;
  tls?: { key: string; cert: string };
  /** Optional secret every signaling join must present. */
  secret?: string;
  /**
   * Pace every model download that does not ask for its own rate (?bps=) to this many bytes/s. On one machine the
   * files arrive at memory speed and no plan would bother to split a small model; a home network's rate makes the
   * demo show what cold-start hiding does across devices.
   */
  defaultModelBytesPerSec?: number;
  /**
   * The OpenAI-compatible API on the plain-HTTP server (loopback unless httpHost says otherwise; then give it a
   * token). Host tabs reach its relay over either server. The secret is the signaling secret.
   */
  api?: Omit<ApiRelayOptions, 'secret' | 'log' | 'pageUrl'>;
  log?: (line: string) => void;
}

export interface ShoalServer {
  httpPort: number;
  httpsPort: number | null;
  httpUrl: string;
  signaling: SignalingServer;
  api: ApiRelay;
  close(): Promise<void>;
}

export function appHandler(
  opts: Pick<ShoalServerOptions, 'distDir' | 'modelsDir' | 'fixturesDir' | 'defaultModelBytesPerSec'>,
): (req: IncomingMessage, res: ServerResponse) => void {
  const throttle = { bytesPerSecFor: throttleFromRequest };
  const modelThrottle = {
    bytesPerSecFor: (req: IncomingMessage) => throttleFromRequest(req) ?? opts.defaultModelBytesPerSec,
  };
  const chain: Middleware[] = [serveFiles('/models/', opts.modelsDir, modelThrottle)];
  if (opts.fixturesDir && existsSync(opts.fixturesDir))
    chain.push(serveFiles('/fixtures/', opts.fixturesDir, throttle));
  const dist = serveFiles('/', opts.distDir);
  chain.push((req, res, next) => {
    // The app is one page: '/' (with any query, e.g. ?room=) is index.html.
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/') req.url = '/index.html' + url.search;
    return dist(req, res, next);
  });
  return (req, res) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    let i = 0;
    const next = (): void => {
      const mw = chain[i++];
      if (!mw) {
        res.statusCode = 404;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end('not found');
        return;
      }
      Promise.resolve(mw(req, res, next)).catch(() => {
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
    };
    next();
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

export async function startShoalServer(opts: ShoalServerOptions): Promise<ShoalServer> {
  const handler = appHandler(opts);
  const signaling = new SignalingServer({ secret: opts.secret, log: opts.log });
  const api = new ApiRelay({ ...opts.api, secret: opts.secret, log: opts.log });
  const servers: Server[] = [];
  const http = createHttp((req, res) => api.handle(req, res) || handler(req, res));
  signaling.attach(http);
  api.attach(http);
  const httpHost = opts.httpHost ?? '127.0.0.1';
  const httpPort = await listen(http, opts.httpPort, httpHost);
  const httpUrl = `http://${httpHost === '0.0.0.0' ? 'localhost' : httpHost}:${httpPort}`;
  api.pageUrl = httpUrl;
  servers.push(http);
  let httpsPort: number | null = null;
  if (opts.httpsPort !== null) {
    if (!opts.tls) throw new Error('HTTPS needs a certificate (tls option)');
    const https = createHttps({ key: opts.tls.key, cert: opts.tls.cert }, handler);
    signaling.attach(https);
    api.attach(https);
    httpsPort = await listen(https, opts.httpsPort, opts.httpsHost ?? '0.0.0.0');
    servers.push(https);
  }
  return {
    httpPort,
    httpsPort,
    httpUrl,
    signaling,
    api,
    async close() {
      signaling.close();
      api.close();
      await Promise.all(servers.map(closeServer));
    },
  };
}
