// A LocalModel on the reference fixtures: a context that shares a prefix with the cache runs only the rest and gives
// what a cold model gives; a branch leaves the main line's cache as it was; the emulated slowdown is paid on the
// step's own compute only (the one rule for the draft and the router's small model).
import { beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backend/cpu/index.ts';
import { assertAllClose } from '../testing/allClose.ts';
import { fixtureDir } from '../testing/fixturesNode.ts';
import { computeLog, queueBusyTask } from '../testing/yieldingWork.ts';
import { localModelFiles } from '../weights/localFiles.ts';
import { openModel } from '../weights/model.ts';
import type { ModelSource } from '../weights/model.ts';
import { LocalModel } from './localModel.ts';
import { argmax } from './sampler.ts';

let model: ModelSource;
beforeAll(async () => {
  model = await openModel(localModelFiles(fixtureDir('tiny-llama')));
});

/** A cold model's logits after `ids` (a fresh cache). */
async function coldLogits(ids: number[], layers?: number): Promise<Float32Array> {
  const cold = await LocalModel.open(model, createCpuBackend(), { maxSeq: 64, layers });
  try {
    return await cold.nextLogits(ids);
  } finally {
    cold.dispose();
  }
}

describe('LocalModel', () => {
  it("an edited context runs only what changed and gives a cold model's logits", async () => {
    const m = await LocalModel.open(model, createCpuBackend(), { maxSeq: 64 });
    const a = await m.prefill([1, 2, 3, 4, 5]);
    expect([a.reusedTokens, a.prefilledTokens]).toEqual([0, 5]);
    const b = await m.prefill([1, 2, 3, 9]);
    expect([b.reusedTokens, b.prefilledTokens]).toEqual([3, 1]);
    expect(m.cached).toEqual([1, 2, 3, 9]);
    assertAllClose(b.logits!, await coldLogits([1, 2, 3, 9]), 1e-5, 1e-4, 'edited');
    const again = await m.prefill([1, 2, 3, 9]);
    expect(again.prefilledTokens, 'the same context: its last position runs again, for its logits').toBe(1);
    const all = await m.prefill([1, 2, 3, 9, 10, 11], 'all', true);
    expect(all.logits!.length).toBe(2 * model.spec.vocabSize);
    expect(all.nextToken).toBe(argmax(all.logits!, model.spec.vocabSize));
    m.dispose();
  });

  it("a branch drafts beside the main line and leaves the main line's cache as it was", async () => {
    const m = await LocalModel.open(model, createCpuBackend(), { maxSeq: 64 });
    const main = [1, 2, 3, 4, 5, 6];
    await m.nextLogits(main);
    const drafted = await m.branch([1, 2, 3], 42, 3);
    // The same continuation drafted from scratch.
    const want: number[] = [];
    for (let ctx = [1, 2, 3, 42]; want.length < 3; ctx = [...ctx, want[want.length - 1]]) {
      want.push(argmax(await coldLogits(ctx)));
    }
    expect(drafted).toEqual(want);
    expect(m.cached).toEqual(main);
    const next = await m.prefill([...main, 7]);
    expect(next.reusedTokens).toBe(6);
    assertAllClose(next.logits!, await coldLogits([...main, 7]), 1e-5, 1e-4, 'after the branch');
    m.dispose();
  });

  it('a layer-skip model runs the first layers with the final norm and head; bad counts are refused', async () => {
    const one = await LocalModel.open(model, createCpuBackend(), { layers: 1, maxSeq: 64 });
    expect(one.spec.nLayers).toBe(1);
    assertAllClose(await one.nextLogits([5, 6, 7]), await coldLogits([5, 6, 7], 1), 0, 0, 'one layer');
    one.dispose();
    for (const layers of [0, 1.5, model.spec.nLayers + 1]) {
      await expect(LocalModel.open(model, createCpuBackend(), { layers })).rejects.toThrow(/layers must be an integer/);
    }
  });

  it('refuses ids outside the vocabulary and contexts past its positions, keeping its cache', async () => {
    const m = await LocalModel.open(model, createCpuBackend(), { maxSeq: 8 });
    await m.prefill([1, 2, 3]);
    await expect(m.prefill([1, 2, model.spec.vocabSize])).rejects.toThrow(/outside the small model's vocabulary/);
    await expect(m.prefill([])).rejects.toThrow(/empty context/);
    await expect(m.prefill([1, 2, 3, 4, 5, 6, 7, 8, 9])).rejects.toThrow(/exceeds the small model's 8 positions/);
    expect(m.cached).toEqual([1, 2, 3]);
    m.dispose();
  });

  it("the emulated slowdown scales the step's own compute, not other tasks that ran while it yielded", async () => {
    const { seen, afterCompute } = computeLog();
    const m = await LocalModel.open(model, createCpuBackend(), { afterCompute });
    // A 40 ms task queued before the step runs at the step's first yield between layers (a message handler, say).
    queueBusyTask(40);
    const t0 = performance.now();
    await m.nextLogits([1, 2, 3]);
    const wallMs = performance.now() - t0;
    expect(wallMs).toBeGreaterThanOrEqual(40);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeLessThan(wallMs - 35);
    expect(seen[0]).toBeGreaterThanOrEqual(0);
    m.dispose();
  });
});
