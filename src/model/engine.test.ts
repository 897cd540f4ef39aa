// The CPU engine against the independent reference fixtures, plus the stage/cache invariants every backend must keep.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCpuBackend as createBackend } from '../backend/cpu/index.ts';
import type { ModelSource } from '../weights/model.ts';
import { assertAllClose, FIXTURE_NAMES, QUANT_FIXTURE_NAMES } from '../testing/allClose.ts';
import { fixtureCases, openFixture } from '../testing/fixturesNode.ts';
import { loadStages, runChain, runInfer } from './infer.ts';
import { Stage } from './stage.ts';

const ATOL = 1e-4,
  RTOL = 1e-4; // test/fixtures/README.md: CPU f32 engine

// Both matmul variants: the WebAssembly SIMD one (the default where supported) and the scalar JavaScript reference.
const VARIANTS = [...FIXTURE_NAMES, ...QUANT_FIXTURE_NAMES].flatMap((name) => [
  { name, simd: true },
  { name, simd: false },
]);

describe.each(VARIANTS)('CPU engine on $name (simd matmul: $simd)', ({ name, simd }) => {
  const createCpuBackend = (): ReturnType<typeof createBackend> => createBackend({ simd });
  let model: ModelSource;
  const cases = fixtureCases(name);
  beforeAll(async () => {
    model = await openFixture(name);
  });
  /** Two stages on a fresh CPU backend: layers [0, cut) and [cut, nLayers). */
  const twoStages = (cut: number) =>
    loadStages(model, createCpuBackend(), [
      { start: 0, end: cut },
      { start: cut, end: model.spec.nLayers },
    ]);

  it('logits at every position and greedy ids match the reference', async () => {
    for (const c of cases) {
      const r = await runInfer({ model, backend: createCpuBackend(), ids: c.input_ids, steps: c.greedy.length });
      expect(r.logits.length).toBe(c.input_ids.length);
      c.logits.forEach((row, i) =>
        assertAllClose(r.logits[i], row, ATOL, RTOL, `${name} case len ${c.input_ids.length} pos ${i}`),
      );
      expect(r.generated).toEqual(c.greedy);
    }
  });

  it('hidden state after each layer matches the reference', async () => {
    const backend = createCpuBackend();
    for (const c of cases) {
      for (const [layer, ref] of Object.entries(c.hidden_after_layer)) {
        const L = Number(layer);
        if (L === model.spec.nLayers - 1) continue; // the last layer's output only leaves through the head
        const [stage] = await loadStages(model, backend, [{ start: 0, end: L + 1 }], 64);
        const { hidden } = await stage.forward(Int32Array.from(c.input_ids));
        const D = model.spec.dim;
        assertAllClose(hidden!.subarray(hidden!.length - D), ref, ATOL, RTOL, `${name} hidden after layer ${L}`);
      }
    }
  });

  it('any split into stages gives the same logits as one stage (property)', async () => {
    const backend = createCpuBackend();
    const c = cases[cases.length - 1];
    const ids = Int32Array.from(c.input_ids);
    const [whole] = await loadStages(model, backend, [{ start: 0, end: model.spec.nLayers }]);
    const ref = (await whole.forward(ids, { logits: 'all' })).logits!;
    const L = model.spec.nLayers;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: L - 1 }), { maxLength: L - 1 }), async (cuts) => {
        const bounds = [0, ...cuts.sort((a, b) => a - b), L];
        const ranges = bounds.slice(1).map((end, i) => ({ start: bounds[i], end }));
        const stages = await loadStages(model, backend, ranges);
        const got = (await runChain(stages, ids, { logits: 'all', argmax: false })).logits!;
        assertAllClose(got, ref, 1e-6, 1e-6, `cuts ${cuts.join(',')}`);
      }),
      { numRuns: 12, seed: 42 },
    );
  });

  it('decode with the KV cache equals recomputing the whole sequence', async () => {
    const c = cases[cases.length - 1];
    const ids = c.input_ids;
    const stages = await twoStages(Math.min(2, model.spec.nLayers - 1)); // tiny-q-llama has 2 layers
    const split = 3;
    await runChain(stages, Int32Array.from(ids.slice(0, split)), { logits: 'none', argmax: false });
    for (let i = split; i < ids.length; i++) {
      const got = (await runChain(stages, Int32Array.of(ids[i]), { logits: 'last', argmax: false })).logits!;
      assertAllClose(got, c.logits[i], ATOL, RTOL, `decode pos ${i}`);
    }
  });

  it('rollback then re-decode gives the same logits as never having gone forward', async () => {
    const c = cases[cases.length - 1];
    const ids = c.input_ids;
    const stages = await twoStages(1);
    await runChain(stages, Int32Array.from(ids.slice(0, 4)), { logits: 'none', argmax: false });
    // go forward on a wrong path (other tokens), then roll every stage back
    await runChain(stages, Int32Array.from([5, 6, 7]), { logits: 'none', argmax: false });
    for (const s of stages) s.rollback(4);
    const got = (await runChain(stages, Int32Array.from(ids.slice(4)), { logits: 'all', argmax: false })).logits!;
    const V = model.spec.vocabSize;
    for (let i = 4; i < ids.length; i++)
      assertAllClose(got.subarray((i - 4) * V, (i - 3) * V), c.logits[i], ATOL, RTOL, `after rollback pos ${i}`);
  });

  it('a branch computes exactly its own path and then gives the main line back untouched', async () => {
    const backend = createCpuBackend();
    const c = cases[cases.length - 1];
    const ids = c.input_ids,
      n = ids.length,
      at = 3;
    const ranges = [
      { start: 0, end: 1 },
      { start: 1, end: model.spec.nLayers },
    ];
    const stages = await loadStages(model, backend, ranges);
    await runChain(stages, Int32Array.from(ids.slice(0, n - 2)), { logits: 'none', argmax: false });
    // An alternative continuation from position `at`, longer than what the main line holds past it.
    const alt = [5, 6, 7, 8, 9, 10].slice(0, n - at);
    for (const s of stages) await s.beginBranch(at, alt.length);
    const branch = (await runChain(stages, Int32Array.from(alt), { logits: 'all', argmax: false })).logits!;
    for (const s of stages) await s.endBranch();
    expect(stages.map((s) => s.pos)).toEqual([n - 2, n - 2]);
    const fresh = await loadStages(model, backend, ranges);
    const ref = (
      await runChain(fresh, Int32Array.from([...ids.slice(0, at), ...alt]), { logits: 'all', argmax: false })
    ).logits!;
    const V = model.spec.vocabSize;
    assertAllClose(branch, ref.subarray(at * V), 1e-6, 1e-6, 'branch vs its path from scratch');
    // The main line goes on as if the branch never ran (its overwritten rows were restored).
    const got = (await runChain(stages, Int32Array.from(ids.slice(n - 2)), { logits: 'all', argmax: false })).logits!;
    for (let i = n - 2; i < n; i++)
      assertAllClose(
        got.subarray((i - n + 2) * V, (i - n + 3) * V),
        c.logits[i],
        ATOL,
        RTOL,
        `main line after a branch, pos ${i}`,
      );
    // A branch cannot write past the positions it asked for, nor start past the stage's position.
    await stages[0].beginBranch(1, 1);
    await expect(stages[0].forward(Int32Array.of(1, 2))).rejects.toThrow(/this branch holds 1 positions/);
    await stages[0].endBranch();
    await expect(stages[0].beginBranch(n + 1, 1)).rejects.toThrow(/cannot branch/);
  });

  it('a batch of conversations computes what each computes alone (and every case matches the reference)', async () => {
    const V = model.spec.vocabSize;
    const stages = await twoStages(1);
    // Each fixture case is a conversation: prefill them one by one into their own sequences, then decode their
    // greedy continuations together, one batched pass per step, as a stage serving several people does.
    const next = new Map<string, number>();
    for (const [i, c] of cases.entries()) {
      const h = (await stages[0].forward(Int32Array.from(c.input_ids), { logits: 'none' }, `c${i}`)).hidden!;
      const out = await stages[1].forward(h, { logits: 'all', argmax: true }, `c${i}`);
      c.logits.forEach((row, p) =>
        assertAllClose(out.logits!.subarray(p * V, (p + 1) * V), row, ATOL, RTOL, `c${i} prefill pos ${p}`),
      );
      next.set(`c${i}`, out.nextToken!);
    }
    const got = cases.map((_, i) => [next.get(`c${i}`)!]);
    const steps = Math.min(...cases.map((c) => c.greedy.length)) - 1;
    for (let t = 0; t < steps; t++) {
      const seqs = cases.map((_, i) => `c${i}`);
      const mid = await stages[0].forwardBatch(seqs.map((seq, i) => ({ seq, input: Int32Array.of(got[i][t]) })));
      const last = await stages[1].forwardBatch(
        seqs.map((seq, i) => ({ seq, input: mid.items[i].hidden!, logits: 'none', argmax: true })),
      );
      last.items.forEach((r, i) => got[i].push(r.nextToken!));
    }
    cases.forEach((c, i) => expect(got[i], `case ${i} batched`).toEqual(c.greedy.slice(0, steps + 1)));
    expect(stages[0].sequenceIds().sort()).toEqual(cases.map((_, i) => `c${i}`).sort());
    stages[0].dropSequence('c0');
    expect(stages[0].hasSequence('c0')).toBe(false);
    await expect(
      stages[0].forwardBatch([
        { seq: 'c1', input: Int32Array.of(1) },
        { seq: 'c1', input: Int32Array.of(2) },
      ]),
    ).rejects.toThrow(/one step per sequence/);
  });

  it('rejects an out-of-vocabulary id and a layer range outside the model', async () => {
    await expect(
      runInfer({ model, backend: createCpuBackend(), ids: [model.spec.vocabSize], steps: 1 }),
    ).rejects.toThrow(/outside the vocabulary/);
    expect(() => new Stage(createCpuBackend(), model.spec, { start: 0, end: model.spec.nLayers + 1 })).toThrow(
      /not within/,
    );
  });
});
