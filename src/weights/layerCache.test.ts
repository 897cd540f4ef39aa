// The weight cache's commit rules over an in-memory directory (Node has no OPFS; e2e/cache.spec.ts runs the real one).
import { describe, expect, it } from 'vitest';
import { LayerCache, memoryDir } from './layerCache.ts';
import { sha256Hex } from './digest.ts';

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

async function put(cache: LayerCache, key: string, b: Uint8Array): Promise<string> {
  const sha = await sha256Hex(b);
  expect(await cache.put(key, b, sha)).toBe(true);
  return sha;
}

describe('LayerCache', () => {
  it('stores, survives a reopen and returns the same bytes', async () => {
    const dir = memoryDir();
    const cache = (await LayerCache.open(dir))!;
    const b = bytes(1000);
    const sha = await put(cache, 'm#layer:0', b);
    const again = (await LayerCache.open(dir))!;
    expect(again.entries()).toEqual([{ key: 'm#layer:0', bytes: 1000, sha256: sha }]);
    expect(await again.get('m#layer:0')).toEqual(b);
    expect(await again.readRange('m#layer:0', 10, 5)).toEqual(b.slice(10, 15));
    expect(again.usedBytes()).toBe(1000);
  });

  it('drops a partial write (a tab closed mid-download) and an entry without its record on open', async () => {
    const dir = memoryDir();
    const cache = (await LayerCache.open(dir))!;
    await put(cache, 'm#layer:0', bytes(100));
    dir.files.set('abc.part', bytes(50)); // interrupted before the commit
    dir.files.set('def.bin', bytes(50)); // committed data without a record
    const again = (await LayerCache.open(dir))!;
    expect(again.entries().map((e) => e.key)).toEqual(['m#layer:0']);
    expect([...dir.files.keys()].some((n) => n.startsWith('abc') || n.startsWith('def'))).toBe(false);
  });

  it('detects a corrupted entry, deletes it and says so', async () => {
    const dir = memoryDir();
    const cache = (await LayerCache.open(dir))!;
    await put(cache, 'm#layer:3', bytes(100));
    const bin = [...dir.files.keys()].find((n) => n.endsWith('.bin'))!;
    dir.files.get(bin)![7] ^= 0xff;
    const notices: string[] = [];
    cache.on('notice', (n) => notices.push(n.kind + ': ' + n.message));
    expect(await cache.get('m#layer:3')).toBeNull();
    expect(notices).toEqual(['corrupt: cached layer:3 does not match its hash: dropped, fetching it again']);
    expect(cache.entries()).toEqual([]);
  });

  it('refuses an entry whose hash is not the one the plan names', async () => {
    const cache = (await LayerCache.open(memoryDir()))!;
    await put(cache, 'm#head', bytes(64));
    expect(await cache.get('m#head', 'f'.repeat(64))).toBeNull();
  });

  it('turns itself off with a message when the disk is nearly full, and the caller just runs on', async () => {
    const cache = (await LayerCache.open(memoryDir(), () => Promise.resolve({ quota: 40e6, usage: 39e6 })))!;
    const notices: string[] = [];
    cache.on('notice', (n) => notices.push(n.kind));
    const b = bytes(100);
    expect(await cache.put('m#layer:0', b, await sha256Hex(b))).toBe(false);
    expect(cache.enabled).toBe(false);
    expect(notices).toEqual(['full']);
    expect(await cache.put('m#layer:1', b, await sha256Hex(b))).toBe(false);
    expect(notices).toEqual(['full']); // said once
  });

  it('refuses to commit bytes that do not match the hash given', async () => {
    const cache = (await LayerCache.open(memoryDir()))!;
    expect(await cache.put('m#layer:0', bytes(10), 'a'.repeat(64))).toBe(false);
    expect(cache.entries()).toEqual([]);
  });

  it('clears everything', async () => {
    const dir = memoryDir();
    const cache = (await LayerCache.open(dir))!;
    await put(cache, 'm#layer:0', bytes(10));
    await cache.clear();
    expect(cache.entries()).toEqual([]);
    expect(dir.files.size).toBe(0);
  });
});
