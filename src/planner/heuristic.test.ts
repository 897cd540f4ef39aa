// The heuristic against the exact DP where exact is computable (K <= 8): within 1%, and always a valid chain.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exactDp } from './exactDp.ts';
import { heuristic } from './heuristic.ts';
import { Tables } from './tables.ts';
import { evaluatePlan } from './costModel.ts';
import { checkChain, compileScenario, scenarioArb } from './testInstances.ts';
import { fleetScenario } from './scaleInstances.ts';

// A generous budget: the search stops at its local optimum long before, so the result does not depend on timing.
const BUDGET_MS = 20_000;

describe('heuristic', () => {
  for (const costModel of ['csgo', 'shoal'] as const) {
    it(`is within 1% of the exact optimum on random instances (${costModel}, K <= 8)`, () => {
      let compared = 0;
      fc.assert(
        fc.property(scenarioArb({ maxDevices: 8, minDevices: 3, maxLayers: 16, minLayers: 4, costModel }), (sc) => {
          const p = compileScenario(sc);
          const T = new Tables(p);
          let exact;
          try {
            exact = exactDp(T);
          } catch (e) {
            expect((e as { code?: string }).code).toBe('ERR_INFEASIBLE_PLAN');
            expect(() => heuristic(T, { budgetMs: BUDGET_MS })).toThrow(/no plan fits/);
            return;
          }
          const h = heuristic(T, { budgetMs: BUDGET_MS });
          checkChain(p, h.segs);
          expect(Math.abs(evaluatePlan(p, h.segs).objectiveSec - h.objectiveSec)).toBeLessThanOrEqual(
            1e-9 * h.objectiveSec,
          );
          expect(h.objectiveSec).toBeGreaterThanOrEqual(exact.objectiveSec * (1 - 1e-12));
          expect(h.objectiveSec, `heuristic ${h.objectiveSec} exact ${exact.objectiveSec}`).toBeLessThanOrEqual(
            exact.objectiveSec * 1.01,
          );
          compared++;
        }),
        { numRuns: costModel === 'csgo' ? 60 : 40, seed: costModel === 'csgo' ? 21 : 22 },
      );
      expect(compared).toBeGreaterThan(20);
    });
  }

  it('is within 1% of exact on 80-layer fleets of 4 to 8 devices', () => {
    for (const K of [4, 6, 8]) {
      for (const seed of [1, 2, 3]) {
        const T = new Tables(compileScenario(fleetScenario(K, 80, 'csgo', seed)));
        const exact = exactDp(T);
        // fewer kicks than the default keeps this test quick; it still has to land within 1%
        const h = heuristic(T, { budgetMs: BUDGET_MS, maxStaleKicks: 20 });
        expect(h.objectiveSec, `K=${K} seed=${seed}`).toBeLessThanOrEqual(exact.objectiveSec * 1.01);
      }
    }
  });
});
