// httpSource against real local HTTP servers: Range reads, size, a server without Range support, pacing, errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caught, sameBytes } from '../testing/assertions.ts';
import { fileSource } from './fileSource.ts';
import { FileNotFoundError, PROBE_BYTES, httpSource, memorySource } from './source.ts';
import { serveDir, startServer, type TestServer } from './testServer.ts';

const FILE_BYTES = 300_000;
let dir: string;
let server: TestServer;
let content: Uint8Array;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-src-'));
  content = new Uint8Array(FILE_BYTES);
  for (let i = 0; i < content.length; i++) content[i] = (i * 2654435761) >>> 24; // bytes that differ at every offset
  writeFileSync(join(dir, 'blob.bin'), content);
  writeFileSync(join(dir, 'empty.bin'), new Uint8Array(0));
  server = await serveDir(dir);
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.length).toBe(want.length);
  expect(sameBytes(got, want)).toBe(true);
}

describe('httpSource', () => {
  it('reports the size from the probe and reads exact byte ranges', async () => {
    const src = httpSource(server.url + 'blob.bin');
    expect(await src.size()).toBe(FILE_BYTES);
    for (const [offset, length] of [
      [0, 1],
      [7, 100],
      [PROBE_BYTES - 10, 20],
      [123_456, 70_000],
      [FILE_BYTES - 3, 3],
      [5, 0],
    ]) {
      expectBytes(await src.read(offset, length), content.subarray(offset, offset + length));
    }
  });

  it('serves reads inside the probed prefix without another request', async () => {
    const src = httpSource(server.url + 'blob.bin');
    const before = server.count('/blob.bin');
    await src.size();
    await src.read(0, 8);
    await src.read(8, 1000);
    expect(server.count('/blob.bin') - before).toBe(1);
    await src.read(PROBE_BYTES, 10);
    expect(server.count('/blob.bin') - before).toBe(2);
    expect(server.requests.at(-1)?.range).toBe(`bytes=${PROBE_BYTES}-${PROBE_BYTES + 9}`);
  });

  it('fetches only the part of a read beyond the probed prefix', async () => {
    const src = httpSource(server.url + 'blob.bin');
    await src.size();
    const before = server.count('/blob.bin');
    expectBytes(await src.read(8, 100_000), content.subarray(8, 100_008)); // a 100 kB header, say
    expect(server.count('/blob.bin') - before).toBe(1);
    expect(server.requests.at(-1)?.range).toBe(`bytes=${PROBE_BYTES}-100007`);
  });

  it('knows an empty file has size 0', async () => {
    expect(await httpSource(server.url + 'empty.bin').size()).toBe(0);
  });

  it('reports a missing file as FileNotFoundError', async () => {
    const e = await caught(httpSource(server.url + 'nope.bin').size());
    expect(e).toBeInstanceOf(FileNotFoundError);
    expect(e.code).toBe('ERR_FETCH');
    expect(e.message).toMatch(/nope\.bin: HTTP 404/);
  });

  it('refuses a read past the end of the file', async () => {
    const src = httpSource(server.url + 'blob.bin');
    const e = await caught(src.read(FILE_BYTES - 10, 20));
    expect(e.code).toBe('ERR_FETCH');
    expect(e.message).toMatch(/asked for 20 bytes at 299990, the server returned 10/);
    const e2 = await caught(src.read(FILE_BYTES + 5, 20));
    expect(e2.message).toMatch(/lie past the end of the file \(300000 bytes\)/);
  });

  it('reports an unreachable server as ERR_FETCH', async () => {
    const dead = await startServer(() => {});
    const url = dead.url;
    await dead.close();
    const e = await caught(httpSource(url + 'x.bin').read(0, 10));
    expect(e.code).toBe('ERR_FETCH');
    expect(e.message).toMatch(/request failed/);
  });

  it('rejects a server that answers 200 to a Range request without reading the body', async () => {
    // A server that ignores Range and would stream a 256 MiB "file"; count what it manages to send.
    const totalBytes = 256 * 1024 * 1024;
    let sentBytes = 0;
    let closed!: () => void;
    const connectionClosed = new Promise<void>((r) => (closed = r));
    const noRange = await startServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(totalBytes), 'Content-Type': 'application/octet-stream' });
      const chunk = new Uint8Array(64 * 1024);
      const pump = () => {
        while (sentBytes < totalBytes) {
          sentBytes += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => closed());
      pump();
    });
    try {
      let delivered = 0;
      const src = httpSource(noRange.url + 'model.safetensors', { onBytes: (n) => (delivered += n) });
      const e = await caught(src.size());
      expect(e.code).toBe('ERR_NO_RANGE_SUPPORT');
      expect(e.message).toMatch(/answered 200 \(the whole file\) to a Range request instead of 206/);
      expect(e.message).toMatch(/Range support/);
      const e2 = await caught(src.read(100, 10));
      expect(e2.code).toBe('ERR_NO_RANGE_SUPPORT');
      await connectionClosed; // the client hung up...
      expect(delivered).toBe(0);
      expect(sentBytes).toBeLessThan(totalBytes / 8); // ...long before the body was through (socket buffers only)
    } finally {
      await noRange.close();
    }
  });

  it('rejects a 206 whose Content-Range does not match the request', async () => {
    const liar = await startServer((_req, res) => {
      res.writeHead(206, { 'Content-Range': 'bytes 0-9/100', 'Content-Length': '10' });
      res.end(new Uint8Array(10));
    });
    try {
      const e = await caught(httpSource(liar.url + 'f.bin').read(50, 10));
      expect(e.code).toBe('ERR_FETCH');
      expect(e.message).toMatch(/mismatched Content-Range \(bytes 0-9\/100\)/);
    } finally {
      await liar.close();
    }
  });

  it('paces delivery to maxBytesPerSec and reports every byte', async () => {
    const bytesPerSec = 400_000;
    const readBytes = 200_000; // 0.5 s at the cap
    const log: { t: number; total: number }[] = [];
    let total = 0;
    const src = httpSource(server.url + 'blob.bin', {
      maxBytesPerSec: bytesPerSec,
      onBytes: (n) => log.push({ t: performance.now(), total: (total += n) }),
    });
    const tStart = performance.now();
    await src.size(); // the probe itself is paced too
    const probed = total;
    const t0 = performance.now();
    const got = await src.read(PROBE_BYTES, readBytes);
    const elapsedS = (performance.now() - t0) / 1000;
    expectBytes(got, content.subarray(PROBE_BYTES, PROBE_BYTES + readBytes));
    expect(total - probed).toBe(readBytes);
    expect(elapsedS).toBeGreaterThanOrEqual((readBytes / bytesPerSec) * 0.95);
    expect(elapsedS).toBeLessThan((readBytes / bytesPerSec) * 3);
    // At no moment has more been delivered than the cap allows since the first byte was asked for.
    for (const { t, total: sum } of log) expect(sum).toBeLessThanOrEqual(((t - tStart) / 1000) * bytesPerSec + 1);
  });

  it('stops a read when its signal aborts', async () => {
    const src = httpSource(server.url + 'blob.bin', { maxBytesPerSec: 100_000 });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('stop')), 100);
    const t0 = performance.now();
    await expect(src.read(PROBE_BYTES, 200_000, { signal: ctl.signal })).rejects.toThrow(/stop/);
    expect(performance.now() - t0).toBeLessThan(1000); // 2 s if it had run to the end
  });
});

describe('fileSource and memorySource', () => {
  it('read the same bytes as the file holds', async () => {
    const f = fileSource(join(dir, 'blob.bin'));
    const m = memorySource('mem', content);
    expect(await f.size()).toBe(FILE_BYTES);
    expect(await m.size()).toBe(FILE_BYTES);
    const disk = readFileSync(join(dir, 'blob.bin'));
    for (const [o, n] of [
      [0, 10],
      [99_999, 50_001],
      [FILE_BYTES - 1, 1],
    ]) {
      expectBytes(await f.read(o, n), disk.subarray(o, o + n));
      expectBytes(await m.read(o, n), disk.subarray(o, o + n));
    }
  });

  it('refuse reads past the end and name a missing file', async () => {
    expect((await caught(fileSource(join(dir, 'blob.bin')).read(FILE_BYTES - 1, 2))).message).toMatch(
      /past the end of the file/,
    );
    expect((await caught(memorySource('mem', content).read(FILE_BYTES, 1))).message).toMatch(
      /past the end of the file/,
    );
    const e = await caught(fileSource(join(dir, 'missing.bin')).size());
    expect(e).toBeInstanceOf(FileNotFoundError);
    expect(e.message).toContain('missing.bin');
  });
});
