// The exact DP against brute force over every ordered subset and cut (both cost models, with and without decode).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exactDp } from './exactDp.ts';
import { Tables } from './tables.ts';
import { evaluatePlan, segmentFinishSec, segmentDecodeSec } from './costModel.ts';
import { bruteForce, checkChain, compileScenario, scenarioArb } from './testInstances.ts';
import { ShoalError } from '../errors.ts';

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

describe('exact DP', () => {
  for (const costModel of ['csgo', 'shoal'] as const) {
    it(`equals brute force on random instances (${costModel}, K <= 4, L <= 8)`, () => {
      fc.assert(
        fc.property(scenarioArb({ maxDevices: 4, maxLayers: 8, costModel }), (sc) => {
          const p = compileScenario(sc);
          const brute = bruteForce(p);
          const T = new Tables(p);
          if (brute.segs === null) {
            expect(() => exactDp(T)).toThrow(expect.objectContaining({ code: 'ERR_INFEASIBLE_PLAN' }));
            return;
          }
          const r = exactDp(T);
          checkChain(p, r.segs);
          expect(close(r.objectiveSec, brute.objectiveSec), `dp ${r.objectiveSec} brute ${brute.objectiveSec}`).toBe(
            true,
          );
          // the DP's own number is the reference cost of the plan it returns
          expect(close(evaluatePlan(p, r.segs).objectiveSec, r.objectiveSec)).toBe(true);
        }),
        { numRuns: 150, seed: costModel === 'csgo' ? 11 : 12 },
      );
    });
  }

  it('table costs equal the item-by-item reference and are nondecreasing in the predecessor finish', () => {
    fc.assert(
      fc.property(
        scenarioArb({ maxDevices: 4, maxLayers: 8 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (sc, x1, x2) => {
          const p = compileScenario(sc);
          const T = new Tables(p);
          const [lo, hi] = x1 < x2 ? [x1, x2] : [x2, x1];
          for (let d = 0; d < T.K; d++)
            for (let s = 0; s < T.L; s++)
              for (let e = s; e < T.L; e++)
                for (let dp = s === 0 ? -1 : 0; dp < (s === 0 ? 0 : T.K); dp++) {
                  if (dp === d) continue;
                  const g = { d, s, e };
                  expect(close(T.finish(d, dp, s, e, lo), segmentFinishSec(p, g, dp, lo))).toBe(true);
                  expect(close(T.decode(d, dp, s, e), p.decodeTokens > 0 ? segmentDecodeSec(p, g, dp) : 0)).toBe(true);
                  expect(segmentFinishSec(p, g, dp, hi)).toBeGreaterThanOrEqual(segmentFinishSec(p, g, dp, lo));
                }
        },
      ),
      { numRuns: 60, seed: 13 },
    );
  });

  it('lets a device take nothing when it would only slow the chain', () => {
    const layers = Array.from({ length: 4 }, () => ({ paramBytes: 1e9, flops: 1e12, activationBytes: 1e6 }));
    const fast = {
      flops: 1e14,
      loadBytesPerSec: 1e10,
      memoryBytes: 1e11,
      uplinkBytesPerSec: 1e9,
      downlinkBytesPerSec: 1e9,
    };
    const slow = {
      flops: 1e9,
      loadBytesPerSec: 1e6,
      memoryBytes: 1e11,
      uplinkBytesPerSec: 1e3,
      downlinkBytesPerSec: 1e3,
    };
    const p = compileScenario({
      costModel: 'csgo',
      promptTokens: 16,
      model: { layers },
      devices: [
        { id: 'slow', ...slow },
        { id: 'fast', ...fast },
      ],
    });
    const r = exactDp(new Tables(p));
    expect(r.segs).toEqual([{ d: 1, s: 0, e: 3 }]);
  });

  it('refuses with ERR_INFEASIBLE_PLAN when nothing fits', () => {
    const layers = Array.from({ length: 4 }, () => ({ paramBytes: 1e9, flops: 1e12, activationBytes: 1e6 }));
    const dev = (id: string) => ({
      id,
      flops: 1e13,
      loadBytesPerSec: 1e9,
      memoryBytes: 1.5e9,
      uplinkBytesPerSec: 1e8,
      downlinkBytesPerSec: 1e8,
    });
    const p = compileScenario({
      costModel: 'csgo',
      promptTokens: 16,
      model: { layers },
      devices: [dev('a'), dev('b')],
    });
    let err: unknown;
    try {
      exactDp(new Tables(p));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShoalError);
    expect((err as ShoalError).code).toBe('ERR_INFEASIBLE_PLAN');
    expect((err as ShoalError).message).toMatch(/no plan fits: the 4 layers need 4\.00 GB/);
  });
});
