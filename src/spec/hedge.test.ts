// The hedge calibrator learns where the draft's second choice wins from judged positions; the prior rules until then.
import { describe, expect, it } from 'vitest';
import { HedgeCalibrator, hedgePays } from './hedge.ts';

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
    expect(c.samples).toBe(200);
  });

  it('forgets old positions past its window and ignores gaps that are not numbers', () => {
    const c = new HedgeCalibrator();
    for (let i = 0; i < 300; i++) c.observe(1, true);
    for (let i = 0; i < 256; i++) c.observe(1, false);
    c.observe(Number.NaN, true);
    expect(c.samples).toBe(256);
    expect(c.altWins(1, 0.5)).toBeLessThan(0.1);
  });

  it('a hedge pays when its expected saving beats its rows at the round trip\'s price per position', () => {
    expect(hedgePays(0.3, 100, 5, 2)).toBe(true); // 30 ms saved against 10 ms of rows
    expect(hedgePays(0.05, 100, 5, 2)).toBe(false); // 5 ms against 10 ms
  });
});
