// The hedge calibrator learns where the draft's second choice wins from judged positions; the prior rules until then.
import { describe, expect, it } from 'vitest';
import { alternatives, HedgeCalibrator, hedgePays, hitWorth } from './hedge.ts';

describe('hedge calibrator', () => {
  it('starts from the prior, then follows what the target judged, by gap', () => {
    const c = new HedgeCalibrator();
    expect(c.altWins(0.1, 0.45)).toBe(0.45);
    // Small gaps: the second choice wins 3 times in 4; large gaps: never.
    for (let i = 0; i < 100; i++) {
      c.observe(0.05 + (i % 10) * 0.01, i % 4 !== 0);
      c.observe(3 + (i % 10) * 0.1, false);
    }
    expect(c.altWins(0.08, 0.45)).toBeGreaterThan(0.6);
    expect(c.altWins(3.5, 0.45)).toBeLessThan(0.1);
    expect(c.samples()).toBe(200);
  });

  it('forgets old positions past its window and ignores gaps that are not numbers', () => {
    const c = new HedgeCalibrator();
    for (let i = 0; i < 300; i++) c.observe(1, true);
    for (let i = 0; i < 256; i++) c.observe(1, false);
    c.observe(Number.NaN, true);
    expect(c.samples()).toBe(256);
    expect(c.altWins(1, 0.5)).toBeLessThan(0.1);
  });

  it('keeps each choice of the draft apart: the third choice learns from its own judged positions', () => {
    const c = new HedgeCalibrator();
    for (let i = 0; i < 50; i++) { c.observe(0.1, true, 1); c.observe(0.1, false, 2); }
    expect(c.altWins(0.1, 0.5, 1)).toBeGreaterThan(0.9);
    expect(c.altWins(0.1, 0.5, 2)).toBeLessThan(0.1);
    expect(c.altWins(0.1, 0.5, 3), 'a choice never observed: its prior').toBe(0.5);
    expect([c.samples(1), c.samples(2), c.samples(3)]).toEqual([50, 50, 0]);
  });

  it('alternatives: the next choices after the greedy token, best first, with their gaps and shares of the top ones', () => {
    const logits = Float32Array.from([0.5, 3, -1, 2.5, 2.9, 2.5]);
    const alts = alternatives(logits, 1, 2);
    expect(alts.map((a) => a.token)).toEqual([4, 3]); // 2.9, then the first of the two 2.5s
    expect(alts[0].gap).toBeCloseTo(0.1, 6);
    expect(alts[1].gap).toBeCloseTo(0.5, 6);
    const z = 1 + Math.exp(-0.1) + Math.exp(-0.5);
    expect(alts[0].share).toBeCloseTo(Math.exp(-0.1) / z, 6);
    expect(alts[1].share).toBeCloseTo(Math.exp(-0.5) / z, 6);
    expect(alternatives(Float32Array.from([1, 2]), 1, 2).map((a) => a.token), 'fewer tokens than asked for').toEqual([0]);
  });

  it('a hit saves 1 - alpha^rows of a round trip: its tokens, 1 + alpha + ..., each worth 1 - alpha of one', () => {
    expect(hitWorth(0.8, 5)).toBeCloseTo(1 - 0.8 ** 5, 12);
    expect(hitWorth(0.8, 1)).toBeCloseTo(0.2, 12);
    expect(hitWorth(1, 3), 'everything accepted anyway: a hit saves nothing').toBe(0);
    expect(hitWorth(0, 3), 'nothing accepted: a hit saves the whole round trip').toBe(1);
  });

  it('a hedge pays when its expected saving beats what computing it costs the stages', () => {
    // 5 rows at alpha 0.8: a hit saves 67% of a round trip.
    expect(hedgePays(0.3, 100, 5, 10, 0.8)).toBe(true); // 20 ms saved against 10 ms of the stages' compute
    expect(hedgePays(0.1, 100, 5, 10, 0.8)).toBe(false); // 6.7 ms against 10 ms
    // The alternative alone (a slow draft): a hit gives one token, 20% of a round trip, for one row.
    expect(hedgePays(0.3, 100, 1, 2, 0.8)).toBe(true); // 6 ms against 2 ms
    expect(hedgePays(0.3, 100, 1, 2, 0.95)).toBe(false); // 1.5 ms against 2 ms: at high acceptance one token is little
  });
});
