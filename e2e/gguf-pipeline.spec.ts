// A Q4_K_M GGUF model as a pipeline over 3 real tabs, each stage on WebGPU (`?backend=webgpu`: Q4_K and Q6_K blocks
// unpacked in the kernels): the generated ids equal one tab running every layer itself.
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { makeModel } from '../scripts/make-model.ts';
import type { StageAssignment } from '../src/pipeline/messages.ts';
import { openRoom } from './room.ts';
import type { Win } from './room.ts';

/**
 * The demo preset's first 3 layers (its draft: hidden 256, so every matrix row is whole 256-value blocks) as Q4_K_M:
 * Q4_K matrices, Q6_K attn_v/ffn_down in the layers llama.cpp gives more bits. Few layers keep SwiftShader fast.
 */
const DIR = resolve(import.meta.dirname, '../public/models/demo-q4km-3');
const MODEL = '/models/demo-q4km-3/model-Q4_K_M.gguf';

test.beforeAll(async () => {
  if (!existsSync(resolve(DIR, 'model-Q4_K_M.gguf')))
    await makeModel({ preset: 'demo', out: DIR, seed: 0, gguf: 'Q4_K_M', role: 'draft', draftLayers: 3 });
});

function generate(page: Page, ids: number[], stages: StageAssignment[]): Promise<{ tokens: number[] }> {
  return page.evaluate(
    async ({ model, ids, stages }) => {
      const s = (window as unknown as Win).shoal.session;
      const r = await s.generateIds(model, ids, { maxTokens: 4, strategy: 'even', cold: true, stages });
      return { tokens: r.tokens };
    },
    { model: MODEL, ids, stages },
  );
}

test('Q4_K_M GGUF over 3 tabs on WebGPU, one stage each: the ids equal one tab alone', async ({ browser }) => {
  const room = await openRoom(browser, 3, 'backend=webgpu');
  try {
    const ids = [257, 117, 416, 10, 260, 403, 261, 267];
    const alone = await generate(room.pages[0], ids, [{ peer: room.ids[0], start: 0, end: 3 }]);
    const split = await generate(
      room.pages[0],
      ids,
      room.ids.map((peer, i) => ({ peer, start: i, end: i + 1 })),
    );
    expect(alone.tokens.length).toBeGreaterThan(0);
    expect(split.tokens).toEqual(alone.tokens);
    // Each tab computed its stage on WebGPU, not on the CPU engine its profile measured faster on SwiftShader.
    for (const p of room.pages)
      expect(
        await p.evaluate(() => (window as unknown as { shoal: { backendNote(): string } }).shoal.backendNote()),
      ).toBe('engine: webgpu (?backend=webgpu)');
  } finally {
    await room.close();
  }
});
