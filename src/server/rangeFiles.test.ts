// Range file serving: parseRange against RFC 9110 cases, and serveFiles over a real HTTP server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDir, type TestServer } from '../weights/testServer.ts';
import { parseRange } from './rangeFiles.ts';

describe('parseRange', () => {
  it.each([
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=-1000', 100, { start: 0, end: 99 }],
    ['bytes=50-1000', 100, { start: 50, end: 99 }], // clamped to the end
    ['bytes=0-65535', 10, { start: 0, end: 9 }], // speculative header probe on a small file
  ] as const)('%s of %i bytes', (h, size, want) => {
    expect(parseRange(h, size)).toEqual(want);
  });

  it.each([
    ['bytes=100-', 100],
    ['bytes=200-300', 100],
    ['bytes=-0', 100],
    ['bytes=0-0', 0],
  ] as const)('%s of %i bytes is not satisfiable', (h, size) => {
    expect(parseRange(h, size)).toBeNull();
  });

  it.each([undefined, '', 'bytes=0-1,5-6', 'items=0-1', 'bytes=-', 'bytes=9-3'])('%s is ignored (whole file)', (h) => {
    expect(parseRange(h, 100)).toBeUndefined();
  });
});

describe('serveFiles', () => {
  let dir: string;
  let server: TestServer;
  let content: Uint8Array;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-serve-'));
    content = new Uint8Array(50_000).map((_, i) => (i * 7) & 0xff);
    writeFileSync(join(dir, 'data.safetensors'), content);
    writeFileSync(join(dir, 'config.json'), '{"a": 1}');
    server = await serveDir(dir, { bytesPerSecFor: (req) => (req.headers['x-slow'] ? 100_000 : undefined) });
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a Range request with 206, Content-Range and exactly those bytes', async () => {
    const res = await fetch(server.url + 'data.safetensors', { headers: { Range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 100-199/50000');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Content-Range/);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(content.slice(100, 200));
  });

  it('serves the whole file without Range, with its type', async () => {
    const res = await fetch(server.url + 'config.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.text()).toBe('{"a": 1}');
  });

  it('answers 416 with the size for a range past the end', async () => {
    const res = await fetch(server.url + 'data.safetensors', { headers: { Range: 'bytes=60000-60010' } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */50000');
  });

  it('answers HEAD with the length and no body', async () => {
    const res = await fetch(server.url + 'data.safetensors', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('50000');
  });

  it('refuses paths that climb out of the root and passes unknown files on', async () => {
    expect((await fetch(server.url + '..%2f..%2fetc%2fpasswd')).status).toBe(403);
    expect((await fetch(server.url + 'missing.bin')).status).toBe(404);
  });

  it('throttles a response to the configured bytes/s', async () => {
    const t0 = performance.now();
    const res = await fetch(server.url + 'data.safetensors', { headers: { Range: 'bytes=0-29999', 'x-slow': '1' } });
    const body = new Uint8Array(await res.arrayBuffer());
    const elapsedS = (performance.now() - t0) / 1000;
    expect(body).toEqual(content.slice(0, 30_000));
    // 30 kB at 100 kB/s is 0.3 s, with no initial burst of a whole read buffer
    expect(elapsedS).toBeGreaterThanOrEqual(0.29);
  });

  it('keeps serving after a client hangs up mid-body', async () => {
    const ctl = new AbortController();
    const res = await fetch(server.url + 'data.safetensors', { headers: { 'x-slow': '1' }, signal: ctl.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ctl.abort();
    const again = await fetch(server.url + 'data.safetensors', { headers: { Range: 'bytes=0-9' } });
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(content.slice(0, 10));
  });
});
