// Predictor and rule by hand: prefill of the uncached part, switch costs across turns, online correction.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../model/config.ts';
import { PRESETS } from '../model/presets.ts';
import { LatencyPredictor, localParams, meshParams, rawTerms } from './predictor.ts';
import { fitSideParams } from './fit.ts';
import type { SideParams } from './predictor.ts';
import { decide } from './rule.ts';
import { layerParams, flopsPerToken } from './cost.ts';

const SMALL: SideParams = { fixedSec: 0.001, prefillSecPerToken: 0.0001, decodeSecPerToken: 0.01 };
const LARGE: SideParams = { fixedSec: 0.02, prefillSecPerToken: 0.0004, decodeSecPerToken: 0.04 };

describe('LatencyPredictor', () => {
  it('prefills only what the side has not cached, decodes the expected output', () => {
    const pr = new LatencyPredictor({ small: SMALL, large: LARGE }, { expectedOutTokens: 11 });
    const cold = pr.predict('large', { contextTokens: 100, cachedTokens: 0, historyTokens: 0 });
    expect(cold.prefillTokens).toBe(100);
    expect(cold.totalSec).toBeCloseTo(0.02 + 100 * 0.0004 + 10 * 0.04, 12);
    expect(cold.switchSec).toBe(0);
    // 80 of 100 cached: 20 to prefill, history (70 tokens before the query) fully cached -> no switch cost
    const warm = pr.predict('large', { contextTokens: 100, cachedTokens: 80, historyTokens: 70 });
    expect(warm.prefillTokens).toBe(20);
    expect(warm.totalSec).toBeCloseTo(0.02 + 20 * 0.0004 + 10 * 0.04, 12);
    expect(warm.switchSec).toBe(0);
    // everything cached still runs one position
    expect(pr.predict('small', { contextTokens: 50, cachedTokens: 50, historyTokens: 40 }).prefillTokens).toBe(1);
  });

  it('a side that lacks the history pays its re-prefill as the switch cost', () => {
    const pr = new LatencyPredictor({ small: SMALL, large: LARGE });
    // turn 2 of a conversation that ran on the large side: 60 tokens of history, query of 20
    const stay = pr.predict('large', { contextTokens: 80, cachedTokens: 59, historyTokens: 60 });
    const move = pr.predict('small', { contextTokens: 80, cachedTokens: 0, historyTokens: 60 });
    expect(stay.switchSec).toBeCloseTo(1 * 0.0004, 12); // the last answer token was never fed back
    expect(move.switchSec).toBeCloseTo(60 * 0.0001, 12);
    expect(move.prefillSec - move.switchSec).toBeCloseTo(20 * 0.0001, 12);
  });

  it('corrects each term online towards what turns measured (EWMA of the ratio)', () => {
    const pr = new LatencyPredictor({ small: SMALL, large: LARGE }, { ewmaWeight: 0.5, expectedOutTokens: 5 });
    const q = { contextTokens: 10, cachedTokens: 0, historyTokens: 0 };
    for (let i = 0; i < 30; i++) {
      const p = pr.predict('small', q);
      // the device is really 3x slower on prefill and 2x on decode than its profile says
      pr.observe('small', p, {
        ttftSec: 3 * (SMALL.fixedSec + 10 * SMALL.prefillSecPerToken),
        decodeSec: 2 * 9 * SMALL.decodeSecPerToken,
        outTokens: 10,
      });
    }
    const c = pr.corrections('small');
    expect(c.firstRatio).toBeCloseTo(3, 6);
    expect(c.decodeRatio).toBeCloseTo(2, 6);
    expect(c.outTokens).toBeCloseTo(10, 6);
    const p = pr.predict('small', q);
    expect(p.totalSec).toBeCloseTo(3 * (0.001 + 10 * 0.0001) + 2 * 9 * 0.01, 6);
    expect(pr.corrections('large').firstRatio).toBe(1); // the other side is untouched
  });

  it('rejects bad parameters and bad turn shapes with ShoalError', () => {
    expect(() => new LatencyPredictor({ small: { ...SMALL, fixedSec: NaN }, large: LARGE })).toThrow(/small side/);
    const pr = new LatencyPredictor({ small: SMALL, large: LARGE });
    expect(() => pr.predict('small', { contextTokens: 10, cachedTokens: 0, historyTokens: 10 })).toThrow(
      /bad turn shape/,
    );
  });

  it('derives parameters from profiles: the mesh adds hops, a faster device predicts less', () => {
    const spec = parseConfig(PRESETS.demo.config);
    expect(flopsPerToken(spec)).toBe(2 * layerParams(spec) * spec.nLayers + 2 * spec.dim * spec.vocabSize);
    const fast = localParams(spec, { matmulGflops: 100, gemvGflops: 10 });
    const slow = localParams(spec, { matmulGflops: 10, gemvGflops: 1 });
    expect(slow.prefillSecPerToken).toBeCloseTo(10 * fast.prefillSecPerToken, 12);
    const prof = { matmulGflops: 100, gemvGflops: 10 };
    const oneTab = meshParams(spec, [{ peer: 'a', start: 0, end: 12, profile: prof, linkToNext: null }], 'a');
    const link = { rttMs: 10, bytesPerSec: 1e6 };
    const three = meshParams(
      spec,
      [
        { peer: 'a', start: 0, end: 4, profile: prof, linkToNext: link },
        { peer: 'b', start: 4, end: 8, profile: prof, linkToNext: link },
        { peer: 'c', start: 8, end: 12, profile: prof, linkToNext: link },
      ],
      'a',
    );
    // same compute, plus three hops of 5 ms each per token and 1 KiB of activations per hop
    expect(three.decodeSecPerToken - oneTab.decodeSecPerToken).toBeCloseTo(3 * 0.005 + (3 * 1024) / 1e6 + 2 * 1e-3, 9);
    expect(three.fixedSec).toBeGreaterThan(oneTab.fixedSec);
  });
});

describe('decide', () => {
  const la = (alpha: number, theta: number) => ({ name: 'latency-aware' as const, alpha, theta });
  it('large iff p - alpha * (T_large - T_small) > theta', () => {
    expect(decide(la(1, 0.5), 0.9, 0.1, 0.3).side).toBe('large'); // 0.9 - 0.2 = 0.7
    expect(decide(la(1, 0.5), 0.6, 0.1, 0.3).side).toBe('small'); // 0.6 - 0.2 = 0.4
    expect(decide(la(1, 0.5), 0.4, 0.5, 0.3).side).toBe('large'); // large is faster: 0.4 + 0.2 = 0.6
    expect(decide(la(1, 0.5), 0.7, 0.1, 0.3).side).toBe('small'); // exactly theta stays small
    expect(decide(la(0, 0.5), 0.51, 0, 100).side).toBe('large'); // alpha 0 = static threshold
    expect(decide({ name: 'static', alpha: 5, theta: 0.5 }, 0.6, 0, 100).side).toBe('large');
    expect(decide({ name: 'always-small', alpha: 0, theta: 0 }, 1, 0, 0).side).toBe('small');
    expect(decide({ name: 'always-large', alpha: 0, theta: 0 }, 0, 0, 0).side).toBe('large');
  });
  it('rejects p outside [0, 1] and unknown policies', () => {
    expect(() => decide(la(1, 0.5), 1.2, 0, 0)).toThrow(/\[0, 1\]/);
    expect(() => decide({ name: 'nope' as 'static', alpha: 0, theta: 0 }, 0.5, 0, 0)).toThrow(/unknown policy/);
    expect(() => decide(la(-1, 0.5), 0.5, 0, 0)).toThrow(/alpha/);
  });
});

describe('per-position (attention) terms', () => {
  const P: SideParams = {
    fixedSec: 0.01,
    prefillSecPerToken: 0.001,
    decodeSecPerToken: 0.02,
    prefillSecPerPosition: 1e-5,
    decodeSecPerPosition: 2e-5,
  };
  it('a token costs more the more context it attends over, in prefill, switch and decode', () => {
    const pr = new LatencyPredictor({ small: P, large: P }, { expectedOutTokens: 5 });
    // positions 100..119 prefilled (sum 2190), 4 decoded tokens at positions 120..123 (sum 486)
    const r = pr.predict('large', { contextTokens: 120, cachedTokens: 100, historyTokens: 110 });
    expect(r.prefillSec).toBeCloseTo(20 * 0.001 + 2190 * 1e-5, 12);
    expect(r.switchSec).toBeCloseTo(10 * 0.001 + 1045 * 1e-5, 12); // positions 100..109
    expect(r.decodeSec).toBeCloseTo(4 * 0.02 + 486 * 2e-5, 12);
    const early = pr.predict('large', { contextTokens: 20, cachedTokens: 0, historyTokens: 10 });
    expect(early.prefillSec).toBeLessThan(r.prefillSec);
  });
  it('the fit recovers the parameters from timed turns of different lengths', () => {
    const shapes = [
      [1, 0, 17],
      [128, 0, 17],
      [512, 0, 17],
      [544, 512, 9],
      [64, 0, 3],
    ];
    const turns = shapes.map(([contextTokens, cachedTokens, outTokens]) => {
      const t = rawTerms(P, { contextTokens, cachedTokens, historyTokens: 0, outTokens });
      return { contextTokens, cachedTokens, outTokens, ttftSec: t.fixedSec + t.prefillSec, decodeSec: t.decodeSec };
    });
    const f = fitSideParams(turns);
    for (const k of [
      'fixedSec',
      'prefillSecPerToken',
      'decodeSecPerToken',
      'prefillSecPerPosition',
      'decodeSecPerPosition',
    ] as const)
      expect(f[k], k).toBeCloseTo(P[k]!, 9);
    expect(() => fitSideParams(turns.slice(0, 2))).toThrow(/at least 3/);
  });
});
