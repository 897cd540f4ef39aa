// The real server over real sockets (ephemeral ports): Range over HTTP and HTTPS, the download cap, and
// signaling that refuses bad input (bad JSON, oversized frames, unknown types, wrong room or secret)
// while everyone else keeps being served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { WebSocket, type RawData } from 'ws';
import { startShoalServer, type ShoalServer } from './app.ts';
import { ensureCertificate } from './certs.ts';
import { FIXTURES_DIR } from './vitePlugin.ts';
import { SignalingClient } from '../mesh/signalingClient.ts';
import type { ServerMessage } from '../mesh/signalingProtocol.ts';

let server: ShoalServer;
let dir: string;
const blob = new Uint8Array(300_000).map((_, i) => (i * 7919) & 0xff);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-server-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>shoal</title>');
  writeFileSync(join(dir, 'blob.bin'), blob);
  const tls = await ensureCertificate(join(dir, 'certs'), []);
  server = await startShoalServer({
    distDir: dir,
    modelsDir: dir,
    fixturesDir: FIXTURES_DIR,
    httpPort: 0,
    httpsPort: 0,
    httpsHost: '127.0.0.1',
    tls,
    secret: undefined,
  });
});
afterAll(async () => {
  await server?.close();
});

/** A frame's text: ws hands a Buffer, or an ArrayBuffer or fragments depending on binaryType. */
const rawText = (d: RawData): string =>
  (Array.isArray(d) ? Buffer.concat(d) : d instanceof ArrayBuffer ? Buffer.from(d) : d).toString('utf8');

/** A raw signaling socket that records what the server says. */
class Probe {
  ws: WebSocket;
  got: ServerMessage[] = [];
  closeCode: number | null = null;
  private open: Promise<void>;
  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.open = new Promise((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
    });
    this.ws.on('message', (d) => this.got.push(JSON.parse(rawText(d)) as ServerMessage));
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('error', () => undefined);
  }
  opened(): Promise<void> {
    return this.open;
  }
  send(x: unknown): void {
    this.ws.send(typeof x === 'string' ? x : JSON.stringify(x));
  }
  async join(room: string, peerId: string, secret?: string): Promise<void> {
    await this.opened();
    this.send({ type: 'join', v: 1, room, peerId, name: peerId, ...(secret ? { secret } : {}) });
    await expect.poll(() => this.got.some((m) => m.type === 'joined' || m.type === 'error')).toBe(true);
  }
  has(pred: (m: ServerMessage) => boolean): boolean {
    return this.got.some(pred);
  }
}

const wsUrl = (): string => `ws://127.0.0.1:${server.httpPort}/signal`;
/** A probe that has joined `room` as `peerId` (or been refused: its messages say which). */
async function joined(room: string, peerId: string, secret?: string): Promise<Probe> {
  const p = new Probe(wsUrl());
  await p.join(room, peerId, secret);
  return p;
}
const errorCode = (code: string) => (m: ServerMessage) => m.type === 'error' && m.code === code;

describe('static files with Range', () => {
  it('serves 206 with the right bytes, 416 past the end, and the app at /', async () => {
    const r = await fetch(`${server.httpUrl}/models/blob.bin`, { headers: { Range: 'bytes=1000-1999' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 1000-1999/${blob.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(Buffer.from(blob.subarray(1000, 2000)))).toBe(true);
    const tail = await fetch(`${server.httpUrl}/models/blob.bin`, { headers: { Range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(Buffer.from(blob.subarray(blob.length - 10)))).toBe(true);
    expect(
      (await fetch(`${server.httpUrl}/models/blob.bin`, { headers: { Range: `bytes=${blob.length}-` } })).status,
    ).toBe(416);
    const page = await fetch(`${server.httpUrl}/?room=x`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('shoal');
    expect((await fetch(`${server.httpUrl}/models/../../etc/passwd`)).status).not.toBe(200);
    expect((await fetch(`${server.httpUrl}/nope.js`)).status).toBe(404);
  });

  it('serves the shared fixtures with Range', async () => {
    const file = readFileSync(join(FIXTURES_DIR, 'tiny-llama/model.safetensors'));
    const r = await fetch(`${server.httpUrl}/fixtures/tiny-llama/model.safetensors`, {
      headers: { Range: 'bytes=8-263' },
    });
    expect(r.status).toBe(206);
    expect(Buffer.from(await r.arrayBuffer()).equals(file.subarray(8, 264))).toBe(true);
  });

  it('serves Range over HTTPS with the self-signed certificate', async () => {
    const body = await new Promise<{ status: number; bytes: Buffer }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: server.httpsPort!,
          path: '/models/blob.bin',
          headers: { Range: 'bytes=5-9' },
          rejectUnauthorized: false,
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, bytes: Buffer.concat(parts) }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body.status).toBe(206);
    expect(body.bytes.equals(Buffer.from(blob.subarray(5, 10)))).toBe(true);
  });

  it('caps the download rate with ?bps=', async () => {
    const t0 = performance.now();
    const r = await fetch(`${server.httpUrl}/models/blob.bin?bps=1000000`, { headers: { Range: 'bytes=0-199999' } });
    const bytes = (await r.arrayBuffer()).byteLength;
    const sec = (performance.now() - t0) / 1000;
    expect(bytes).toBe(200_000);
    expect(bytes / sec).toBeLessThan(1_300_000);
    expect(bytes / sec).toBeGreaterThan(500_000);
  });
});

describe('signaling', () => {
  it('relays within a room only and refuses bad input without hurting anyone else', async () => {
    const a = await joined('r1', 'peer-a');
    const b = await joined('r1', 'peer-b');
    const other = await joined('r2', 'peer-c');
    expect(b.got.find((m) => m.type === 'joined')).toMatchObject({ peers: [{ peerId: 'peer-a' }] });
    await expect.poll(() => a.has((m) => m.type === 'peer-joined' && m.peer.peerId === 'peer-b')).toBe(true);
    expect(other.got.find((m) => m.type === 'joined')).toMatchObject({ peers: [] });

    // Bad input from b: each refused with a code, the connection stays.
    b.send('{not json');
    b.send({ type: 'launch-missiles' });
    // peer-c is in another room
    b.send({ type: 'signal', to: 'peer-c', linkId: 'l1', data: { type: 'offer', sdp: 'x' } });
    b.send({ type: 'signal', to: 'peer-a', linkId: 'bad id!', data: {} });
    b.send({ type: 'join', v: 1, room: 'r2', peerId: 'peer-b2', name: '' }); // second join
    await expect
      .poll(() =>
        ['bad-json', 'unknown-type', 'no-such-peer', 'bad-message', 'already-joined'].every((c) => b.has(errorCode(c))),
      )
      .toBe(true);
    expect(other.has((m) => m.type === 'signal')).toBe(false);

    // Signal before joining.
    const lurker = new Probe(wsUrl());
    await lurker.opened();
    lurker.send({ type: 'signal', to: 'peer-a', linkId: 'l1', data: { type: 'offer' } });
    await expect.poll(() => lurker.has(errorCode('not-joined'))).toBe(true);

    // An oversized frame closes only the sender's socket.
    const big = await joined('r1', 'peer-big');
    big.send(JSON.stringify({ type: 'signal', to: 'peer-a', linkId: 'l1', data: { pad: 'x'.repeat(100_000) } }));
    await expect.poll(() => big.closeCode).toBe(1009);

    // Everyone else is still served: a -> b relays, within the room only.
    a.send({ type: 'signal', to: 'peer-b', linkId: 'l2', data: { type: 'offer', sdp: 'v=0' } });
    await expect.poll(() => b.has((m) => m.type === 'signal' && m.from === 'peer-a' && m.linkId === 'l2')).toBe(true);
    expect(other.has((m) => m.type === 'signal')).toBe(false);
    expect(a.closeCode).toBeNull();
    expect(b.closeCode).toBeNull();

    // Leaving is announced to the room.
    b.ws.close();
    await expect.poll(() => a.has((m) => m.type === 'peer-left' && m.peerId === 'peer-b')).toBe(true);
    for (const p of [a, other, lurker]) p.ws.close();
  });

  it('enforces a room secret set by its first member', async () => {
    const owner = await joined('vault', 'owner', 's3cret');
    const thief = await joined('vault', 'thief', 'guess');
    expect(thief.has(errorCode('bad-secret'))).toBe(true);
    await expect.poll(() => thief.closeCode).toBe(4001);
    const none = await joined('vault', 'nosecret');
    expect(none.has(errorCode('bad-secret'))).toBe(true);
    const friend = await joined('vault', 'friend', 's3cret');
    expect(friend.got.find((m) => m.type === 'joined')).toMatchObject({ peers: [{ peerId: 'owner' }] });
    expect(owner.has((m) => m.type === 'peer-joined' && m.peer.peerId === 'thief')).toBe(false);
    for (const p of [owner, friend, none]) p.ws.close();
  });

  it('rate-limits a flooding connection and keeps serving the rest', async () => {
    const flood = await joined('r3', 'flood');
    const calm = await joined('r3', 'calm');
    const calm2 = await joined('r3', 'calm2');
    for (let i = 0; i < 1000; i++) flood.send({ type: 'signal', to: 'calm', linkId: 'x', data: { i } });
    await expect.poll(() => flood.has(errorCode('rate-limited'))).toBe(true);
    await expect.poll(() => flood.closeCode).toBe(4002);
    const relayed = calm.got.filter((m) => m.type === 'signal').length;
    expect(relayed).toBeLessThan(300);
    calm2.send({ type: 'signal', to: 'calm', linkId: 'y', data: { ok: true } });
    await expect.poll(() => calm.has((m) => m.type === 'signal' && m.linkId === 'y')).toBe(true);
    for (const p of [calm, calm2]) p.ws.close();
  });

  it('the browser signaling client joins, sees the roster and rejoins after its socket drops', async () => {
    const mk = (peerId: string) =>
      new SignalingClient({
        url: wsUrl(),
        room: 'r4',
        peerId,
        name: peerId,
        WebSocketImpl: WebSocket as unknown as typeof globalThis.WebSocket,
      });
    const x = mk('x1');
    await expect.poll(() => x.state).toBe('joined');
    const y = mk('y1');
    const seen: string[] = [];
    y.on('joined', (peers) => seen.push(peers.map((p) => p.peerId).join(',')));
    await expect.poll(() => seen).toEqual(['x1']);
    // Drop y's socket from the outside, as a network blip would.
    (y as unknown as { ws: WebSocket }).ws.close();
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[1]).toBe('x1');
    expect(y.state).toBe('joined');
    x.close();
    y.close();
  });
});
