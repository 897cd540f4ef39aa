// The router's small model pays the emulated slowdown by the same rule as the draft (model/localModel.ts): on each
// step's own compute, not on other tasks that ran while it yielded; and a sampled reply is reproducible by its seed.
import { beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backend/cpu/index.ts';
import { fixtureDir } from '../testing/fixturesNode.ts';
import { computeLog, queueBusyTask } from '../testing/yieldingWork.ts';
import { localModelFiles } from '../weights/localFiles.ts';
import { openModel } from '../weights/model.ts';
import type { ModelSource } from '../weights/model.ts';
import { LocalEngine } from './localEngine.ts';

let small: ModelSource;
beforeAll(async () => {
  small = await openModel(localModelFiles(fixtureDir('tiny-llama')));
});

describe('LocalEngine (a LocalModel)', () => {
  it("pays the slowdown on each forward's own compute, not on a task that ran while it yielded", async () => {
    const { seen, afterCompute } = computeLog();
    const eng = await LocalEngine.load(small, createCpuBackend(), 64, afterCompute);
    queueBusyTask(40);
    const t0 = performance.now();
    const r = await eng.generate([1, 2, 3], { maxTokens: 3 });
    const wallMs = performance.now() - t0;
    expect(r.tokens).toHaveLength(3);
    expect(seen, 'the prefill and two steps').toHaveLength(3);
    expect(wallMs).toBeGreaterThanOrEqual(40);
    expect(seen.reduce((a, b) => a + b, 0)).toBeLessThan(wallMs - 35);
    eng.dispose();
  });

  it('samples the same reply from the same seed, cached prefix or not', async () => {
    const eng = await LocalEngine.load(small, createCpuBackend(), 64);
    const sampling = { temperature: 0.9, topP: 0.95, seed: 4 };
    const a = await eng.generate([1, 2, 3, 4], { maxTokens: 8, sampling });
    const b = await eng.generate([1, 2, 3, 4], { maxTokens: 8, sampling });
    expect(b.reusedTokens).toBe(3);
    expect(b.tokens).toEqual(a.tokens);
    eng.reset();
    expect((await eng.generate([1, 2, 3, 4], { maxTokens: 8, sampling })).tokens).toEqual(a.tokens);
    eng.dispose();
  });
});
