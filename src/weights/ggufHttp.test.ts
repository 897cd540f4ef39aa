// A GGUF file over real HTTP (Range requests, as a browser tab or the Hub serves it): the header in a few ranged
// reads, each layer in one, the same tensors as from disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameBytes } from '../testing/assertions.ts';
import { FIXTURES_DIR, openFixture } from '../testing/fixturesNode.ts';
import { openModelAt } from './locate.ts';
import { serveDir, type TestServer } from './testServer.ts';

let server: TestServer;
beforeAll(async () => {
  server = await serveDir(FIXTURES_DIR);
});
afterAll(() => server?.close());

describe('GGUF over HTTP', () => {
  it('reads the header by ranges and each layer in one ranged request', async () => {
    const ranges: string[] = [];
    const url = `${server.url}tiny-q-llama/model-Q4_K_M.gguf`;
    const model = await openModelAt(url, { onRequest: (r) => ranges.push(r.range) });
    expect(ranges.length).toBeGreaterThan(0);
    expect(ranges.every((r) => r.startsWith('bytes='))).toBe(true);
    const local = await openFixture('tiny-q-llama/Q4_K_M');
    expect(model.spec).toEqual(local.spec);
    ranges.length = 0;
    const [got, want] = await Promise.all([model.loadLayer(1), local.loadLayer(1)]);
    expect(ranges).toHaveLength(1);
    for (const [name, t] of want) expect(sameBytes(got.get(name)!.data, t.data), name).toBe(true);
  });
});
