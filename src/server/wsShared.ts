// What the server's two WebSocket endpoints (signaling, the API's host-tab relay) share: the request path, secrets
// compared in constant time, frames as bytes, and the ping that drops sockets whose TCP died.
import type { IncomingMessage } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';

/** Server -> client WebSocket ping period; a client that misses one is dropped (dead TCP). */
export const WS_PING_INTERVAL_MS = 10_000;

/** The request's path, or '' when its URL does not parse. */
export function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://x').pathname;
  } catch {
    return '';
  }
}

export const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** `given` hashes to `expected` (hashing first makes the comparison constant-time whatever the lengths). */
export function sameSecret(expected: Buffer, given: string | undefined): boolean {
  return given !== undefined && timingSafeEqual(expected, sha256(given));
}

/** A frame's bytes: ws hands a Buffer, fragments, or an ArrayBuffer. */
export function frameBytes(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
}

/** One ping round: a socket that did not answer the last ping is terminated, the others are pinged again. */
export function pingRound(clients: Iterable<{ ws: WebSocket; alive: boolean }>): void {
  for (const c of clients) {
    if (!c.alive) {
      c.ws.terminate();
      continue;
    }
    c.alive = false;
    c.ws.ping();
  }
}
