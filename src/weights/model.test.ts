// ModelSource on the reference fixtures (F32 and BF16), a sharded model and broken models, from disk and real HTTP.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR } from '../testing/fixturesNode.ts';
import { caught, sameBytes } from '../testing/assertions.ts';
import type { HostTensor } from './types.ts';
import { EMBED_TENSOR, FINAL_NORM_TENSOR, LM_HEAD_TENSOR, expectedShape, layerTensorNames } from '../model/config.ts';
import { localModelFiles } from './localFiles.ts';
import {
  INDEX_FILE,
  MAX_GAP_BYTES,
  httpModelFiles,
  isHubRepoId,
  modelBaseUrl,
  openModel,
  planReads,
  resolveModelFiles,
  type ModelFiles,
  type ModelSource,
} from './model.ts';
import { readSafetensorsHeader } from './safetensors.ts';
import { fileSource } from './fileSource.ts';
import { serveDir, startServer, type TestServer } from './testServer.ts';
import { shardFileName, shardIndex, writeSafetensors } from './writer.ts';

const FIXTURES = FIXTURES_DIR;

let tmp: string;
let fixtureServer: TestServer;
let tmpServer: TestServer;

/** Every tensor of a fixture, in file order, read straight from the file (header parse only). */
async function allTensors(dir: string): Promise<HostTensor[]> {
  const path = join(dir, 'model.safetensors');
  const header = await readSafetensorsHeader(fileSource(path));
  const bytes = readFileSync(path);
  return [...header.tensors.values()]
    .sort((a, b) => a.begin - b.begin)
    .map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      data: new Uint8Array(bytes.subarray(t.begin, t.end)),
    }));
}

/** A model folder in tmp: the fixture's config and tokenizer files plus the given weight files. */
function writeModel(name: string, fixture: string, files: Record<string, Uint8Array | string>): void {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(FIXTURES, fixture, 'config.json'), join(dir, 'config.json'));
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
}

const QWEN_SHARD_1 = (n: string) =>
  n === EMBED_TENSOR || /^model\.layers\.[01]\./.test(n) || /^model\.layers\.2\.(self_attn|input_layernorm)/.test(n);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'shoal-model-'));
  const llama = await allTensors(join(FIXTURES, 'tiny-llama'));
  const qwen = await allTensors(join(FIXTURES, 'tiny-qwen2'));

  // Sharded tiny-qwen2: layer 2's attention in shard 1 and its MLP in shard 2, so one layer straddles.
  const shards = [qwen.filter((t) => QWEN_SHARD_1(t.name)), qwen.filter((t) => !QWEN_SHARD_1(t.name))];
  writeModel('sharded', 'tiny-qwen2', {
    [shardFileName(0, 2)]: writeSafetensors(shards[0]),
    [shardFileName(1, 2)]: writeSafetensors(shards[1]),
    [INDEX_FILE]: JSON.stringify(shardIndex(shards)),
  });

  // Broken models, each with one thing wrong.
  const without = (ts: HostTensor[], name: string) => ts.filter((t) => t.name !== name);
  writeModel('missing-layer-tensor', 'tiny-llama', {
    'model.safetensors': writeSafetensors(without(llama, 'model.layers.2.mlp.up_proj.weight')),
  });
  writeModel('missing-lm-head', 'tiny-llama', {
    'model.safetensors': writeSafetensors(without(llama, LM_HEAD_TENSOR)),
  });
  writeModel('missing-embedding', 'tiny-qwen2', { 'model.safetensors': writeSafetensors(without(qwen, EMBED_TENSOR)) });
  writeModel('wrong-shape', 'tiny-llama', {
    'model.safetensors': writeSafetensors(
      llama.map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [64, 32] } : t)),
    ),
  });
  writeModel('no-weights', 'tiny-llama', {});
  writeModel('bad-index', 'tiny-qwen2', { [INDEX_FILE]: '{"weight_map": ' });
  writeModel('index-no-map', 'tiny-qwen2', { [INDEX_FILE]: '{"metadata": {}}' });
  const idx = shardIndex(shards);
  delete idx.weight_map['model.layers.4.mlp.down_proj.weight'];
  writeModel('index-missing-tensor', 'tiny-qwen2', {
    [shardFileName(0, 2)]: writeSafetensors(shards[0]),
    [shardFileName(1, 2)]: writeSafetensors(shards[1]),
    [INDEX_FILE]: JSON.stringify(idx),
  });
  writeModel('missing-shard', 'tiny-qwen2', {
    [shardFileName(0, 2)]: writeSafetensors(shards[0]),
    [INDEX_FILE]: JSON.stringify(shardIndex(shards)),
  });
  const evil = shardIndex(shards);
  evil.weight_map[EMBED_TENSOR] = '../../etc/passwd';
  writeModel('evil-index', 'tiny-qwen2', { [INDEX_FILE]: JSON.stringify(evil) });
  mkdirSync(join(tmp, 'no-config'));

  fixtureServer = await serveDir(FIXTURES);
  tmpServer = await serveDir(tmp);
});

afterAll(async () => {
  await fixtureServer?.close();
  await tmpServer?.close();
  rmSync(tmp, { recursive: true, force: true });
});

type Where = 'disk' | 'http';
const fixtureFiles = (where: Where, name: string): ModelFiles =>
  where === 'disk' ? localModelFiles(join(FIXTURES, name)) : httpModelFiles(fixtureServer.url + name);
const tmpFiles = (where: Where, name: string): ModelFiles =>
  where === 'disk' ? localModelFiles(join(tmp, name)) : httpModelFiles(tmpServer.url + name);

describe.each(['disk', 'http'] as const)('fixtures from %s', (where) => {
  const cases = [
    { name: 'tiny-llama', dtype: 'F32', nLayers: 4, tied: false, dataBytes: 900352 },
    { name: 'tiny-qwen2', dtype: 'BF16', nLayers: 6, tied: true, dataBytes: 1244352 },
  ] as const;

  for (const c of cases) {
    it(`${c.name}: every layer has the right tensors, shapes, dtype and bytes, one read per layer`, async () => {
      const model = await openModel(fixtureFiles(where, c.name));
      expect(model.spec.nLayers).toBe(c.nLayers);
      const reference = new Map((await allTensors(join(FIXTURES, c.name))).map((t) => [t.name, t]));
      const server = fixtureServer;
      const file = `/${c.name}/model.safetensors`;
      let total = 0;
      for (let layer = 0; layer < c.nLayers; layer++) {
        model.resetStats();
        const before = server.count(file);
        const tensors = await model.loadLayer(layer);
        expect(model.stats().reads).toBe(1);
        if (where === 'http') expect(server.count(file) - before).toBe(1); // counted at the server
        expect([...tensors.keys()]).toEqual(layerTensorNames(model.spec, layer));
        for (const [name, t] of tensors) {
          expect(t.name).toBe(name);
          expect(t.dtype).toBe(c.dtype);
          expect(t.shape).toEqual(expectedShape(model.spec, name));
          expect(sameBytes(t.data, reference.get(name)!.data)).toBe(true);
          expect(t.data.byteOffset).toBe(0); // typed-array views need alignment
        }
        expect(model.stats().bytes).toBe(model.layerBytes(layer));
        total += model.layerBytes(layer);
      }
      total += model.embeddingBytes() + model.headBytes() + model.finalNormBytes();
      expect(total).toBe(c.dataBytes); // the sizes account for every byte of the file

      const embedding = await model.loadEmbedding();
      expect(embedding.shape).toEqual([314, model.spec.dim]);
      expect(sameBytes(embedding.data, reference.get(EMBED_TENSOR)!.data)).toBe(true);
      const head = await model.loadLmHead();
      expect(head.name).toBe(c.tied ? EMBED_TENSOR : LM_HEAD_TENSOR);
      expect(sameBytes(head.data, reference.get(head.name)!.data)).toBe(true);
      expect(model.headBytes()).toBe(c.tied ? 0 : 314 * model.spec.dim * 4);
      const norm = await model.loadFinalNorm();
      expect(norm.shape).toEqual([model.spec.dim]);
    });
  }

  it('tiny-llama: known bytes at offsets taken from the file outside this code', async () => {
    // From a Python dump of the header: header length 4000, layer 0 input_layernorm at data [160768, 161024).
    const model = await openModel(fixtureFiles(where, 'tiny-llama'));
    const raw = readFileSync(join(FIXTURES, 'tiny-llama', 'model.safetensors'));
    const [norm] = await model.loadTensors(['model.layers.0.input_layernorm.weight']);
    expect(sameBytes(norm.data, raw.subarray(8 + 4000 + 160768, 8 + 4000 + 161024))).toBe(true);
  });

  it('loadTensors returns tensors in the order asked, coalescing what is contiguous', async () => {
    const model = await openModel(fixtureFiles(where, 'tiny-llama'));
    const names = [
      'model.layers.3.self_attn.q_proj.weight',
      FINAL_NORM_TENSOR,
      'model.layers.3.input_layernorm.weight',
    ];
    model.resetStats();
    const ts = await model.loadTensors(names);
    expect(ts.map((t) => t.name)).toEqual(names);
    // Layer 3 attention ends at 891904, the final norm starts at 900096: an 8 KiB gap, read through.
    expect(model.stats().reads).toBe(1);
    model.resetStats();
    await model.loadTensors([LM_HEAD_TENSOR, FINAL_NORM_TENSOR]); // 0.9 MB apart
    expect(model.stats().reads).toBe(2);
  });

  it('opening costs a handful of requests and reads no tensor data', async () => {
    const before = fixtureServer.requests.length;
    const model = await openModel(fixtureFiles(where, 'tiny-qwen2'));
    expect(model.stats().reads).toBe(0);
    if (where === 'http') {
      const opened = fixtureServer.requests.slice(before).map((r) => `${r.path} ${r.range ?? ''}`.trim());
      expect(opened.sort()).toEqual(
        ['/tiny-qwen2/config.json', '/tiny-qwen2/model.safetensors bytes=0-65535', `/tiny-qwen2/${INDEX_FILE}`].sort(),
      );
    }
  });

  it('a sharded model loads lazily, shard by shard, with the same tensors as the single file', async () => {
    const model = await openModel(tmpFiles(where, 'sharded'));
    const single = await openModel(fixtureFiles(where, 'tiny-qwen2'));
    const shard2 = `/sharded/${shardFileName(1, 2)}`;
    if (where === 'http') expect(tmpServer.count(shard2)).toBe(0); // only layer 0's shard header so far
    for (let layer = 0; layer < model.spec.nLayers; layer++) {
      model.resetStats();
      const got = await model.loadLayer(layer);
      expect(model.stats().reads).toBe(layer === 2 ? 2 : 1); // layer 2 straddles the two shards
      const want = await single.loadLayer(layer);
      for (const [name, t] of want) {
        expect(got.get(name)!.shape).toEqual(t.shape);
        expect(got.get(name)!.dtype).toBe('BF16');
        expect(sameBytes(got.get(name)!.data, t.data)).toBe(true);
      }
      expect(model.layerBytes(layer)).toBe(single.layerBytes(layer));
    }
    expect(sameBytes((await model.loadLmHead()).data, (await single.loadEmbedding()).data)).toBe(true);
    expect(model.headBytes()).toBe(0);
  });
});

describe.each(['disk', 'http'] as const)('broken models from %s', (where) => {
  const cases: [string, string, RegExp][] = [
    [
      'missing-layer-tensor',
      'ERR_MISSING_TENSOR',
      /no tensor "model\.layers\.2\.mlp\.up_proj\.weight" \(needed by layer 2\)/,
    ],
    [
      'missing-lm-head',
      'ERR_MISSING_TENSOR',
      /no tensor "lm_head\.weight" \(needed by the LM head \(config\.json has tie_word_embeddings false\)\)/,
    ],
    [
      'missing-embedding',
      'ERR_MISSING_TENSOR',
      /no tensor "model\.embed_tokens\.weight" \(needed by the token embedding\)/,
    ],
    [
      'wrong-shape',
      'ERR_BAD_SAFETENSORS',
      /layers\.1\.self_attn\.k_proj\.weight" has shape \[64, 32\] but config\.json implies \[32, 64\] \(layer 1\)/,
    ],
    ['no-weights', 'ERR_MISSING_TENSOR', /neither model\.safetensors nor model\.safetensors\.index\.json exists/],
    ['bad-index', 'ERR_BAD_SAFETENSORS', /model\.safetensors\.index\.json is not valid JSON/],
    ['index-no-map', 'ERR_BAD_SAFETENSORS', /missing "weight_map" object/],
    [
      'index-missing-tensor',
      'ERR_MISSING_TENSOR',
      /no shard holds tensor "model\.layers\.4\.mlp\.down_proj\.weight" \(needed by layer 4\)/,
    ],
    [
      'evil-index',
      'ERR_BAD_SAFETENSORS',
      /weight_map entry for "model\.embed_tokens\.weight" names an invalid shard file/,
    ],
    ['no-config', 'ERR_BAD_CONFIG', /no config\.json/],
  ];
  for (const [name, code, message] of cases) {
    it(`${name}: ${code}`, async () => {
      const e = await caught(openModel(tmpFiles(where, name)));
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
    });
  }

  it('missing-shard: opens (the first shard is there), then names the missing file on load', async () => {
    const model = await openModel(tmpFiles(where, 'missing-shard'));
    await model.loadLayer(1);
    const e = await caught(model.loadLayer(4));
    expect(e.code).toBe('ERR_FETCH');
    expect(e.message).toContain(shardFileName(1, 2));
  });
});

it('treats an HTML fallback page (Vite, static hosts) as a missing file, not as JSON or weights', async () => {
  // Like Vite's dev server: config.json exists, anything else gets index.html with status 200.
  const config = readFileSync(join(FIXTURES, 'tiny-llama', 'config.json'));
  const spa = await startServer((req, res) => {
    if (req.url === '/m/config.json')
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(config);
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><html></html>');
  });
  try {
    const e = await caught(openModel(httpModelFiles(spa.url + 'm')));
    expect(e.code).toBe('ERR_MISSING_TENSOR');
    expect(e.message).toMatch(/neither model\.safetensors nor model\.safetensors\.index\.json exists/);
  } finally {
    await spa.close();
  }
});

describe('ModelSource API edges', () => {
  let model: ModelSource;
  beforeAll(async () => {
    model = await openModel(localModelFiles(join(FIXTURES, 'tiny-llama')));
  });

  it('rejects a layer out of range and an unknown tensor', async () => {
    expect((await caught(model.loadLayer(4))).message).toMatch(/layer 4 is out of range: the model has layers 0\.\.3/);
    expect(() => model.layerBytes(-1)).toThrow(/out of range/);
    const e = await caught(model.loadTensors(['model.layers.0.nonsense']));
    expect(e.code).toBe('ERR_MISSING_TENSOR');
  });

  it('honours an aborted signal', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('tab closed'));
    await expect(model.loadLayer(0, { signal: ctl.signal })).rejects.toThrow(/tab closed/);
  });
});

describe('planReads', () => {
  const t = (name: string, begin: number, end: number) => ({
    file: 'a',
    info: { name, dtype: 'F32' as const, shape: [(end - begin) / 4], begin, end },
  });
  it('merges contiguous and nearly contiguous tensors, splits at big gaps and per file', () => {
    const runs = planReads([
      t('c', 200, 300),
      t('a', 0, 100),
      t('b', 100, 200),
      t('far', 1400 + MAX_GAP_BYTES + 1, 1400 + MAX_GAP_BYTES + 9),
      t('near', 300 + 1000, 300 + 1100),
      { ...t('other', 0, 100), file: 'b' },
    ]);
    expect(runs.map((r) => [r.file, r.begin, r.end, r.tensors.map((x) => x.name).join()])).toEqual([
      ['a', 0, 1400, 'a,b,c,near'],
      ['a', 1400 + MAX_GAP_BYTES + 1, 1400 + MAX_GAP_BYTES + 9, 'far'],
      ['b', 0, 100, 'other'],
    ]);
  });
});

describe('model locations', () => {
  it('maps a Hub repo id to resolve/main URLs and keeps URLs as given', () => {
    expect(isHubRepoId('HuggingFaceTB/SmolLM2-135M')).toBe(true);
    expect(isHubRepoId('./models/demo')).toBe(false);
    expect(isHubRepoId('/abs/path')).toBe(false);
    expect(isHubRepoId('a/b/c')).toBe(false);
    expect(modelBaseUrl('HuggingFaceTB/SmolLM2-135M')).toBe(
      'https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/main/',
    );
    expect(modelBaseUrl('Qwen/Qwen2.5-0.5B', 'v1.0')).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B/resolve/v1.0/');
    expect(httpModelFiles('http://127.0.0.1:9/models/demo').base).toBe('http://127.0.0.1:9/models/demo/');
    expect(() => modelBaseUrl('no-slash-name')).toThrow(/neither an http\(s\) URL nor a Hub repo id/);
  });

  it('resolves a local folder, an http URL and a Hub id to the right kind of files', async () => {
    expect((await resolveModelFiles(join(FIXTURES, 'tiny-llama'))).base).toBe(join(FIXTURES, 'tiny-llama'));
    expect((await resolveModelFiles(fixtureServer.url + 'tiny-llama')).base).toBe(fixtureServer.url + 'tiny-llama/');
    expect((await resolveModelFiles('HuggingFaceTB/SmolLM2-135M')).base).toBe(
      'https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/main/',
    );
  });
});
