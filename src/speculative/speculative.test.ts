// Speculative decoding over a 3-tab pipeline (in-memory bus standing in for WebRTC, which Node cannot run; the
// real CPU engine and real model files): greedy output equals the target alone at every draft length, sequential
// and parallel, with forced rejections; after speculative turns the stages' caches hold no stale state.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuBackend } from '../backend/cpu/index.ts';
import { runInfer } from '../model/infer.ts';
import { LocalModel } from '../model/localModel.ts';
import { Coordinator } from '../pipeline/coordinator.ts';
import { MemoryBus, withDelay } from '../pipeline/memoryBus.ts';
import { cpuStageRunner } from '../testing/cpuStage.ts';
import { FIXTURE_NAMES } from '../testing/allClose.ts';
import { fixtureCases, fixtureDir } from '../testing/fixturesNode.ts';
import { localModelFiles } from '../weights/localFiles.ts';
import { openModel } from '../weights/model.ts';
import type { ModelSource } from '../weights/model.ts';
import { makeModel } from '../../scripts/make-model.ts';
import { HedgeCalibrator } from './hedge.ts';
import { SpeculativeDecoder, type SpecOptions } from './speculative.ts';

async function mesh(dir: string, maxSeq = 96, delayMs = 0) {
  const bus = new MemoryBus();
  const tabs = ['a', 'b', 'c'];
  const link = (id: string) => (delayMs > 0 ? withDelay(bus.transport(id), delayMs) : bus.transport(id));
  for (const id of tabs) cpuStageRunner(link(id), dir);
  const coordinator = new Coordinator(link('a-ui'));
  const model = await openModel(localModelFiles(dir));
  const L = model.spec.nLayers;
  const cut1 = Math.max(1, Math.floor(L / 3)),
    cut2 = Math.max(cut1 + 1, Math.floor((2 * L) / 3));
  await coordinator.assign(
    dir,
    [
      { peer: 'b', start: 0, end: cut1 },
      { peer: 'a', start: cut1, end: cut2 },
      { peer: 'c', start: cut2, end: L },
    ],
    tabs,
    maxSeq,
  );
  return { coordinator, model, maxSeq };
}

const targetAlone = async (model: ModelSource, ids: number[], steps: number) =>
  (await runInfer({ model, backend: createCpuBackend(), ids, steps, logits: 'none' })).generated;

describe.each(FIXTURE_NAMES)("speculative decoding on %s (layer-skip draft: the target's first layer)", (name) => {
  it('greedy output equals the reference at several gammas, sequential and parallel, forced rejections', async () => {
    const { coordinator, model, maxSeq } = await mesh(fixtureDir(name));
    const draft = await LocalModel.open(model, createCpuBackend(), { layers: 1 });
    const spec = new SpeculativeDecoder(coordinator, draft);
    const cases = fixtureCases(name);
    let rejections = 0;
    for (const gamma of [1, 3, 5, 'auto'] as const) {
      for (const parallel of [false, true]) {
        for (const [i, c] of cases.entries()) {
          const corruptDraft = i % 2 === 0 ? (k: number) => k % 4 === 2 : undefined;
          const r = await spec.generate(c.input_ids, {
            maxTokens: c.greedy.length,
            eos: [],
            gamma,
            parallel,
            corruptDraft,
            maxSeq,
          });
          expect(r.tokens, `gamma ${gamma} parallel ${parallel} case ${i}`).toEqual(c.greedy);
          expect(r.stoppedBy).toBe('maxTokens');
          rejections += r.drafted - r.accepted;
        }
      }
    }
    expect(rejections, 'the forced corruptions were rejected').toBeGreaterThan(0);
    coordinator.dispose();
  });
});

describe('speculative sampling through the pipeline', () => {
  it('rows line up: a draft equal to the target is always accepted, a weaker one not; tokens are valid', async () => {
    const name = 'tiny-llama';
    const { coordinator, model, maxSeq } = await mesh(fixtureDir(name));
    const sampling = { temperature: 0.8, topP: 1, seed: 11 };
    const prompt = fixtureCases(name)[0].input_ids;
    const same = await LocalModel.open(model, createCpuBackend());
    const r = await new SpeculativeDecoder(coordinator, same).generate(prompt, {
      maxTokens: 20,
      eos: [],
      gamma: 4,
      parallel: true,
      sampling,
      maxSeq,
    });
    expect(r.tokens).toHaveLength(20);
    expect(r.acceptanceRate, 'p == q up to float rounding').toBeGreaterThan(0.95);
    const weak = await LocalModel.open(model, createCpuBackend(), { layers: 1 });
    const w = await new SpeculativeDecoder(coordinator, weak).generate(prompt, {
      maxTokens: 20,
      eos: [],
      gamma: 4,
      parallel: false,
      sampling,
      maxSeq,
    });
    expect(w.tokens).toHaveLength(20);
    expect(w.tokens.every((t) => t >= 0 && t < model.spec.vocabSize)).toBe(true);
    expect(w.acceptanceRate).toBeLessThan(r.acceptanceRate);
    coordinator.dispose();
  });
});

describe('speculative decoding on a generated draft/target pair (tiny preset)', () => {
  let root = '';
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'shoal-spec-'));
    await makeModel({
      preset: 'tiny',
      role: 'draft',
      draftLayers: 2,
      draftStrength: 0.1,
      out: join(root, 'draft'),
      seed: 3,
    });
    await makeModel({
      preset: 'tiny',
      role: 'model',
      draftLayers: 2,
      draftStrength: 0.1,
      out: join(root, 'target'),
      seed: 3,
    });
  }, 60_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** The pair over a 3-stage pipeline whose links add `delayMs`, and the target's own 32 tokens after a prompt. */
  /**
   * The target over 3 tabs with `delayMs` links, the draft in a tab of its own: `runAhead` runs a greedy parallel
   * turn from that draft-only tab; `expectNoTrace` checks that a plain turn afterwards equals the target alone.
   */
  const pairOverLinks = async (delayMs: number) => {
    const { coordinator, model, maxSeq } = await mesh(join(root, 'target'), 160, delayMs);
    const draft = await LocalModel.open(await openModel(localModelFiles(join(root, 'draft'))), createCpuBackend());
    const spec = new SpeculativeDecoder(coordinator, draft);
    const prompt = [5, 17, 99, 3, 250, 41];
    const runAhead = (ids: number[], o: Omit<SpecOptions, 'eos' | 'parallel'>) =>
      spec.generate(ids, { eos: [], parallel: true, sharesCompute: false, maxSeq, ...o });
    const expectNoTrace = async (ids: number[]) => {
      const plain = await coordinator.generate(ids, { maxTokens: 8, eos: [] });
      expect(plain.tokens).toEqual(await targetAlone(model, ids, 8));
    };
    return { coordinator, model, prompt, want: await targetAlone(model, prompt, 32), runAhead, expectNoTrace };
  };

  it('greedy equals the target alone; later turns (plain and speculative) equal a fresh session', async () => {
    const { coordinator, model, maxSeq } = await mesh(join(root, 'target'), 160);
    const draft = await LocalModel.open(await openModel(localModelFiles(join(root, 'draft'))), createCpuBackend());
    const spec = new SpeculativeDecoder(coordinator, draft);
    const prompt = [5, 17, 99, 3, 250, 41];
    const want = await targetAlone(model, prompt, 24);
    let acceptance = 0;
    for (const gamma of [2, 4, 8, 'auto'] as const) {
      for (const parallel of [false, true]) {
        const r = await spec.generate(prompt, { maxTokens: 24, eos: [], gamma, parallel, maxSeq });
        expect(r.tokens, `gamma ${gamma} parallel ${parallel}`).toEqual(want);
        acceptance = Math.max(acceptance, r.acceptanceRate);
      }
    }
    expect(acceptance, 'a 0.1-strength draft agrees often').toBeGreaterThan(0.3);
    // a later turn continues the conversation: speculative, then a plain turn, then an edited history
    const turn2 = [...prompt, ...want, 7, 8, 9];
    const r2 = await spec.generate(turn2, {
      maxTokens: 12,
      eos: [],
      gamma: 6,
      parallel: true,
      corruptDraft: (k) => k === 1,
      maxSeq,
    });
    expect(r2.tokens).toEqual(await targetAlone(model, turn2, 12));
    const turn3 = [...turn2, ...r2.tokens, 11];
    const plain = await coordinator.generate(turn3, { maxTokens: 6, eos: [] });
    expect(plain.tokens).toEqual(await targetAlone(model, turn3, 6));
    const turn4 = [5, 17, 100, 101];
    const r4 = await spec.generate(turn4, { maxTokens: 10, eos: [], gamma: 3, parallel: true, maxSeq });
    expect(r4.tokens).toEqual(await targetAlone(model, turn4, 10));
    coordinator.dispose();
  }, 60_000);

  it('a draft-only tab sends rounds ahead (several in flight): greedy stays exact, no stale state', async () => {
    // a link delay, so rounds are still in flight while the draft works ahead
    const { coordinator, model, prompt, want, runAhead, expectNoTrace } = await pairOverLinks(3);
    let sentAhead = 0,
      stale = 0,
      usedAhead = 0;
    for (const [gamma, maxInFlight, corruptDraft] of [
      [2, 3, undefined],
      [1, 4, undefined],
      [3, 2, (k: number) => k % 7 === 5],
      ['auto', 3, (k: number) => k % 5 === 3],
    ] as const) {
      const r = await runAhead(prompt, { maxTokens: 32, gamma, maxInFlight, hedges: 0, corruptDraft });
      expect(r.tokens, `gamma ${gamma} in flight ${maxInFlight}`).toEqual(want);
      expect(r.stoppedBy).toBe('maxTokens');
      sentAhead += r.sentAhead;
      stale += r.staleRounds;
      usedAhead += r.usedAhead;
    }
    expect(sentAhead, 'rounds went out while earlier ones were in flight').toBeGreaterThan(0);
    expect(usedAhead, "some drafted-ahead candidates were the target's own tokens").toBeGreaterThan(0);
    expect(stale, 'forced rejections dropped rounds sent on top of them').toBeGreaterThan(0);
    // the stages' caches hold stale rounds' positions; the next turns must not see them
    const later = [5, 17, 99, 8, 8];
    await expectNoTrace(later);
    const r = await runAhead(later, {
      maxTokens: 12,
      gamma: 2,
      maxInFlight: 3,
      hedges: 0,
      corruptDraft: (k) => k === 2,
    });
    expect(r.tokens).toEqual(await targetAlone(model, later, 12));
    coordinator.dispose();
  }, 60_000);

  it('hedges (verified in a branch beside the main line): greedy stays exact, hits used, no stale state', async () => {
    // A 10 ms link: a hedge's drafts may take 5% of a round trip (a faster link leaves room for none).
    const { coordinator, model, prompt, want, runAhead, expectNoTrace } = await pairOverLinks(10);
    let sent = 0,
      hits = 0,
      hedgeTokens = 0;
    // A forced corruption makes the draft's own choice the alternative: the hedge that should win there.
    for (const [gamma, maxInFlight, hedges, corruptDraft] of [
      [3, 2, 1, (k: number) => k % 4 === 1],
      [2, 4, 3, (k: number) => k % 5 === 2],
      ['auto', 3, 2, undefined],
      [4, 1, 2, (k: number) => k % 3 === 0],
    ] as const) {
      const r = await runAhead(prompt, { maxTokens: 32, gamma, maxInFlight, hedges, corruptDraft });
      expect(r.tokens, `gamma ${gamma} in flight ${maxInFlight} hedges ${hedges}`).toEqual(want);
      expect(r.stoppedBy).toBe('maxTokens');
      sent += r.hedgesSent;
      hits += r.hedgeHits;
      hedgeTokens += r.hedgeTokens;
    }
    expect(sent, 'hedges went out while rounds were in flight').toBeGreaterThan(0);
    expect(hits, "some hedges held the target's token").toBeGreaterThan(0);
    expect(hedgeTokens).toBeGreaterThanOrEqual(hits);
    // Branches restored every stage's rows: the next turns see no trace of them.
    const later = [5, 17, 99, 8, 8];
    await expectNoTrace(later);
    // A calibrator passed in learns across turns (SpecSession keeps one per draft/target pair).
    const calibrator = new HedgeCalibrator();
    const corruptDraft = (k: number) => k % 3 === 1;
    const r = await runAhead(later, { maxTokens: 12, gamma: 3, maxInFlight: 2, hedges: 2, corruptDraft, calibrator });
    expect(r.tokens).toEqual(await targetAlone(model, later, 12));
    const learnt = calibrator.samples();
    expect(learnt, 'the judged positions were observed').toBeGreaterThan(0);
    expect(
      calibrator.samples(2),
      "for the draft's third choice too (a forced corruption has only one alternative)",
    ).toBeGreaterThan(0);
    await runAhead(later, { maxTokens: 12, gamma: 3, maxInFlight: 2, hedges: 2, calibrator });
    expect(calibrator.samples(), 'and kept for the next turn').toBeGreaterThan(learnt);
    // Hedging is greedy-only (the sampling rule judges one proposal per position): with sampling none is sent.
    const sampling = { temperature: 0.7, topP: 1, seed: 5 };
    const sampled = await runAhead(later, { maxTokens: 8, gamma: 3, hedges: 2, sampling });
    expect(sampled.hedgesSent).toBe(0);
    coordinator.dispose();
  }, 60_000);

  it("a stop ends the turn after the round in flight with a prefix of the target's output", async () => {
    const { coordinator, model, maxSeq } = await mesh(join(root, 'target'));
    const draft = await LocalModel.open(await openModel(localModelFiles(join(root, 'draft'))), createCpuBackend());
    const prompt = [4, 40, 44];
    const want = await targetAlone(model, prompt, 30);
    const abort = new AbortController();
    const r = await new SpeculativeDecoder(coordinator, draft).generate(prompt, {
      maxTokens: 30,
      eos: [],
      gamma: 3,
      parallel: true,
      maxSeq,
      signal: abort.signal,
      onRound: (x) => {
        if (x.round === 2) abort.abort();
      },
    });
    expect(r.stoppedBy).toBe('stop');
    expect(r.tokens.length).toBeLessThan(30);
    expect(r.tokens).toEqual(want.slice(0, r.tokens.length));
    coordinator.dispose();
  });

  it('stops at eos inside an accepted run of drafts', async () => {
    const { coordinator, model, maxSeq } = await mesh(join(root, 'target'));
    const draft = await LocalModel.open(await openModel(localModelFiles(join(root, 'draft'))), createCpuBackend());
    const prompt = [9, 8, 7, 6];
    const want = await targetAlone(model, prompt, 16);
    const eos = want[6];
    const r = await new SpeculativeDecoder(coordinator, draft).generate(prompt, {
      maxTokens: 16,
      eos: [eos],
      gamma: 5,
      parallel: true,
      maxSeq,
    });
    expect(r.tokens).toEqual(want.slice(0, want.indexOf(eos) + 1));
    expect(r.stoppedBy).toBe('eos');
    coordinator.dispose();
  });
});
