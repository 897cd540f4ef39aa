// The router end to end in Node with two real CPU engines on the reference fixtures (tiny-llama small,
// tiny-qwen2 large; they share one tokenizer): decisions follow the rule, tokens equal running that side
// alone, caches are reused when a conversation stays and re-read when it switches.
import { beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backend/cpu/index.ts';
import { runInfer } from '../model/infer.ts';
import { fixtureDir } from '../testing/fixturesNode.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import { localModelFiles } from '../weights/localFiles.ts';
import { openModel } from '../weights/model.ts';
import type { ModelSource } from '../weights/model.ts';
import { EntropyScorer, normalisedMeanEntropy, scorerFrom } from './difficulty.ts';
import { LocalEngine } from './localEngine.ts';
import { LatencyPredictor } from './predictor.ts';
import type { Side } from './predictor.ts';
import { Router } from './router.ts';
import { decide } from './rule.ts';
import { localSide } from './sides.ts';

let small: ModelSource, large: ModelSource;
beforeAll(async () => {
  small = await openModel(localModelFiles(fixtureDir('tiny-llama')));
  large = await openModel(localModelFiles(fixtureDir('tiny-qwen2')));
});

const alone = async (model: ModelSource, ids: number[], steps: number): Promise<number[]> =>
  (await runInfer({ model, backend: createCpuBackend(), ids, steps, logits: 'none' })).generated;

describe('LocalEngine', () => {
  it('reuses the common prefix across turns and gives the same tokens as a fresh run', async () => {
    const eng = await LocalEngine.load(small, createCpuBackend(), 128);
    const turn1 = [1, 20, 30, 40, 50];
    const a = await eng.generate(turn1, { maxTokens: 6 });
    expect(a.tokens).toEqual(await alone(small, turn1, 6));
    expect(a.reusedTokens).toBe(0);
    // the next turn extends the conversation: everything but the last answer token is cached
    const turn2 = [...turn1, ...a.tokens, 7, 8, 9];
    const b = await eng.generate(turn2, { maxTokens: 6 });
    expect(b.reusedTokens).toBe(turn1.length + a.tokens.length - 1);
    expect(b.prefilledTokens).toBe(4);
    expect(b.tokens).toEqual(await alone(small, turn2, 6));
    // a diverging context rolls back to the common prefix
    const other = [1, 20, 99, 98];
    const c = await eng.generate(other, { maxTokens: 5 });
    expect(c.reusedTokens).toBe(2);
    expect(c.tokens).toEqual(await alone(small, other, 5));
    await expect(eng.generate([1, 100000], { maxTokens: 2 })).rejects.toThrow(/outside the small model's vocabulary/);
    // a rejected input leaves the engine usable
    expect((await eng.generate(turn1, { maxTokens: 6 })).tokens).toEqual(a.tokens);
    eng.dispose();
  });
});

describe('difficulty', () => {
  it('normalised entropy: 0 for a certain row, 1 for a uniform row, in between otherwise', () => {
    const V = 8;
    const certain = new Float32Array(V).fill(-1e4);
    certain[3] = 0;
    expect(normalisedMeanEntropy(certain, V)).toBeCloseTo(0, 6);
    expect(normalisedMeanEntropy(new Float32Array(V).fill(2), V)).toBeCloseTo(1, 6);
    const two = new Float32Array(2 * V).fill(-1e4);
    two[0] = 0;
    two.fill(0, V); // rows: certain, uniform
    expect(normalisedMeanEntropy(two, V)).toBeCloseTo(0.5, 6);
    expect(() => normalisedMeanEntropy(new Float32Array(7), V)).toThrow(/whole rows/);
  });

  it('the small model scores the new query from its own logits (as runInfer computes them)', async () => {
    const eng = await LocalEngine.load(small, createCpuBackend(), 64);
    const ids = [1, 20, 30, 40, 50, 60];
    const p = await new EntropyScorer(eng).score('', ids);
    const ref = await runInfer({ model: small, backend: createCpuBackend(), ids, steps: 1, logits: 'all' });
    expect(p).toBeCloseTo(normalisedMeanEntropy(Float32Array.from(ref.logits.flat()), small.spec.vocabSize), 5);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1);
    expect(eng.cachedPrefix(ids)).toBe(ids.length - 1); // the scored context stays cached for the small side
    await expect(scorerFrom('bad', () => Number.NaN).score('', [1])).rejects.toThrow(/not a number/);
    expect(await scorerFrom('clamped', () => 3).score('', [1])).toBe(1);
    eng.dispose();
  });
});

describe('Router over two CPU engines', () => {
  it("each turn lands where the rule says, with that side's tokens alone; switching re-reads history", async () => {
    const engines = {
      small: await LocalEngine.load(small, createCpuBackend(), 256),
      large: await LocalEngine.load(large, createCpuBackend(), 256),
    };
    const sides = {
      small: localSide(engines.small, () => ({ matmulGflops: 4, gemvGflops: 1 })),
      large: localSide(engines.large, () => ({ matmulGflops: 2, gemvGflops: 0.5 })),
    };
    const script = [0.1, 0.95, 0.9, 0.2, 0.05];
    let turn = 0;
    const scorer = scorerFrom('scripted', () => script[turn++]);
    const predictor = new LatencyPredictor({ small: sides.small.params(), large: sides.large.params() });
    const router = new Router(sides, scorer, predictor, { name: 'latency-aware', alpha: 0.5, theta: 0.5 });
    const queries = [[1, 5, 6, 7], [8, 9, 10], [11, 12], [13, 14, 15, 16], [17]];
    const models: Record<Side, ModelSource> = { small, large };
    let prevSide: Side | null = null;
    for (const q of queries) {
      const before = [...router.conversation];
      const r = await router.turnIds(q, { maxTokens: 5 });
      const context = [...before, ...q];
      expect(r.decision.side).toBe(decide(r.policy, r.p, r.predicted.small.totalSec, r.predicted.large.totalSec).side);
      expect(r.tokens, `turn ${r.index} on ${r.side}`).toEqual(await alone(models[r.side], context, 5));
      if (prevSide === null) expect(r.switchSec).toBe(0);
      else if (prevSide === r.side) {
        expect(r.reusedTokens).toBe(before.length - 1); // all history but the last answer token was cached
        expect(r.predicted[r.side].prefillTokens).toBe(q.length + 1);
      } else {
        expect(r.switchSec).toBeGreaterThan(0);
        expect(r.reusedTokens).toBeLessThan(before.length - 1);
      }
      prevSide = r.side;
    }
    const sidesUsed = router.records.map((r) => r.side);
    expect(sidesUsed).toContain('small');
    expect(sidesUsed).toContain('large');
    expect(router.stats().largeCalls).toBe(sidesUsed.filter((s) => s === 'large').length);
    expect(predictor.corrections('small').seen + predictor.corrections('large').seen).toBe(queries.length);
    engines.small.dispose();
    engines.large.dispose();
  });

  it('chat turns render the shared template and keep the conversation', async () => {
    const tok = await loadTokenizer(fixtureDir('tiny-llama'));
    const eng = await LocalEngine.load(small, createCpuBackend(), 512);
    const eng2 = await LocalEngine.load(large, createCpuBackend(), 512);
    const sides = { small: localSide(eng, () => null), large: localSide(eng2, () => null) };
    const router = new Router(
      sides,
      new EntropyScorer(eng),
      new LatencyPredictor({ small: sides.small.params(), large: sides.large.params() }),
      { name: 'always-small', alpha: 0, theta: 0 },
    );
    const a = await router.chat('hello there', tok, { maxTokens: 4 });
    const b = await router.chat('and again', tok, { maxTokens: 4 });
    expect(a.side).toBe('small');
    expect(router.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(b.historyTokens).toBeGreaterThan(0);
    expect(b.reusedTokens).toBeGreaterThan(0);
    eng.dispose();
    eng2.dispose();
  });
});
