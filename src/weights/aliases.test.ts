// Published-layout variants, written with the repo's own safetensors writer from the tiny-qwen2 fixture (BF16,
// tied): the tied matrix stored only as lm_head.weight (with or without a __metadata__ alias), no "model." prefix,
// f32 norms in a bf16 file, a sharded index. Each must load the very same tensors as the fixture itself.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBED_TENSOR, LM_HEAD_TENSOR } from '../model/config.ts';
import { sameBytes } from '../testing/assertions.ts';
import { fixtureDir } from '../testing/fixturesNode.ts';
import { bf16ToF32 } from './dtype.ts';
import { localModelFiles } from './localFiles.ts';
import { openModel, type ModelSource } from './model.ts';
import type { HostTensor } from './types.ts';
import { shardFileName, shardIndex, writeSafetensors } from './writer.ts';

const FIXTURE = fixtureDir('tiny-qwen2');
let tmp: string;
let reference: ModelSource;
let tensors: HostTensor[];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'shoal-aliases-'));
  reference = await openModel(localModelFiles(FIXTURE));
  tensors = await reference.loadTensors(reference.requiredTensors());
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder with the fixture's config and these weight files. */
function folder(name: string, files: Record<string, Uint8Array | string>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), readFileSync(join(FIXTURE, 'config.json')));
  for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, f), content);
  return dir;
}

/** Loads every tensor the model needs and compares each (as f32 values) with the fixture's. */
async function expectSameWeights(dir: string): Promise<void> {
  const model = await openModel(localModelFiles(dir));
  const got = await model.loadTensors(model.requiredTensors());
  const f32 = (t: HostTensor) =>
    t.dtype === 'F32' ? new Float32Array(t.data.slice().buffer) : bf16ToF32(new Uint16Array(t.data.slice().buffer));
  got.forEach((t, i) => {
    expect(t.name).toBe(tensors[i].name);
    expect(Array.from(f32(t)), t.name).toEqual(Array.from(f32(tensors[i])));
  });
  expect(sameBytes((await model.loadLmHead()).data, (await model.loadEmbedding()).data)).toBe(true);
}

const renamed = (from: string, to: string) => tensors.map((t) => (t.name === from ? { ...t, name: to } : t));

describe('published checkpoint layouts', () => {
  it('tied matrix stored only as lm_head.weight, named in __metadata__ (torch shared-tensor saving)', async () => {
    const bytes = writeSafetensors(renamed(EMBED_TENSOR, LM_HEAD_TENSOR), {
      format: 'pt',
      [EMBED_TENSOR]: LM_HEAD_TENSOR,
    });
    await expectSameWeights(folder('metadata-alias', { 'model.safetensors': bytes }));
  });

  it('tied matrix stored only as lm_head.weight without any alias', async () => {
    const bytes = writeSafetensors(renamed(EMBED_TENSOR, LM_HEAD_TENSOR));
    await expectSameWeights(folder('head-only', { 'model.safetensors': bytes }));
  });

  it('tensors without the "model." prefix (saved from the bare decoder)', async () => {
    const bytes = writeSafetensors(tensors.map((t) => ({ ...t, name: t.name.replace(/^model\./, '') })));
    await expectSameWeights(folder('no-prefix', { 'model.safetensors': bytes }));
  });

  it('f32 norms in a bf16 file, sharded with an index, head-only tied matrix in the second shard', async () => {
    const mixed = renamed(EMBED_TENSOR, LM_HEAD_TENSOR).map((t) =>
      t.name.endsWith('norm.weight')
        ? {
            ...t,
            dtype: 'F32' as const,
            data: new Uint8Array(bf16ToF32(new Uint16Array(t.data.slice().buffer)).buffer),
          }
        : t,
    );
    const shards = [mixed.slice(1, 20), [...mixed.slice(20), mixed[0]]];
    const files: Record<string, Uint8Array | string> = {
      'model.safetensors.index.json': JSON.stringify(shardIndex(shards)),
    };
    shards.forEach((s, i) => (files[shardFileName(i, 2)] = writeSafetensors(s)));
    await expectSameWeights(folder('sharded-mixed', files));
  });
});
