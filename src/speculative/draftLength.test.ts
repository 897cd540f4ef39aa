// Adaptive draft length: the expected-tokens formula, the parallel cycle model against a step-by-step simulation of
// the decoder's schedule, and the chosen gamma (and rounds in flight) move the way the costs say they should.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../model/sampler.ts';
import {
  DraftLengthController,
  bestParallel,
  bestSequential,
  expectedTokens,
  parallelTokensPerSec,
  sequentialTokensPerSec,
} from './draftLength.ts';
import type { RoundCosts } from './draftLength.ts';

const costsOf = (alpha: number, draftMsPerToken: number, baseMs: number, perPositionMs = 0): RoundCosts => ({
  alpha,
  draftMsPerToken,
  roundTripMs: (p) => baseMs + perPositionMs * p,
});

/**
 * Monte-Carlo of SpeculativeDecoder's parallel schedule, one draft step at a time: the draft works up to the next
 * round's needs (round r needs r(gamma+1) - 1 drafts, round 1 gamma), a round goes as soon as its drafts are ready
 * and fewer than `inFlight` are out, a reply is seen between draft steps, tokens are judged in order with iid
 * acceptance, and a rejection (or a candidate not drafted yet) drops every later round and drafting restarts.
 */
function simulate(c: RoundCosts, gamma: number, inFlight: number, nTokens: number, seed: number): number {
  const rand = seededRandom(seed),
    d = c.draftMsPerToken,
    n = gamma + 1,
    rtt = c.roundTripMs(n);
  const need = (r: number): number => (r === 1 ? gamma : r * n - 1);
  let t = 0,
    emitted = 0,
    drafted = 0,
    sent = 0;
  let rounds: { round: number; returnAt: number }[] = [];
  while (emitted < nTokens) {
    while (rounds.length < inFlight && drafted >= need(sent + 1)) rounds.push({ round: ++sent, returnAt: t + rtt });
    if (rounds.length > 0 && rounds[0].returnAt <= t) {
      const r = rounds.shift()!;
      for (let k = (r.round - 1) * n + 1; k <= r.round * n; k++) {
        emitted++;
        if (k > drafted || rand() >= c.alpha) {
          drafted = 0;
          sent = 0;
          rounds = [];
          break;
        }
      }
      continue;
    }
    if (drafted < need(sent + 1)) {
      t += d;
      drafted++;
      continue;
    }
    t = rounds[0].returnAt;
  }
  return (1000 * emitted) / t;
}

describe('draft length', () => {
  it('expected tokens per round: 1 + alpha + ... + alpha^gamma', () => {
    expect(expectedTokens(0.5, 3)).toBeCloseTo(1 + 0.5 + 0.25 + 0.125, 12);
    expect(expectedTokens(1, 4)).toBe(5);
    expect(expectedTokens(0, 7)).toBe(1);
  });

  it('sequential: longer round trips and higher acceptance call for longer drafts', () => {
    const costs = (alpha: number, linkMs: number): RoundCosts => costsOf(alpha, 2, linkMs, 1);
    const best = (c: RoundCosts) => bestSequential(c, 1, 32).gamma;
    expect(best(costs(0.8, 200))).toBeGreaterThan(best(costs(0.8, 10)));
    expect(best(costs(0.9, 50))).toBeGreaterThan(best(costs(0.4, 50)));
    const c = costs(0.7, 80);
    expect(sequentialTokensPerSec(3, c)).toBeCloseTo((1000 * expectedTokens(0.7, 3)) / (3 * 2 + 84), 9);
  });

  it('the parallel cycle model matches a step-by-step simulation of the same schedule', () => {
    const cases: [number, number, number, number, number, number][] = [
      // alpha, draft ms/token, base round trip, ms per position, gamma, rounds in flight
      [0.8, 1, 95, 0.5, 1, 1],
      [0.8, 1, 95, 0.5, 1, 8],
      [0.8, 1, 95, 0.5, 3, 6],
      [0.8, 10, 95, 0.5, 1, 4],
      [0.8, 10, 95, 0.5, 4, 2],
      [0.8, 10, 215, 0, 1, 7],
      [0.5, 5, 60, 0.5, 2, 3],
      [0.95, 3, 100, 0, 4, 2],
      [0.9, 20, 50, 1, 1, 4],
      [0.6, 2, 30, 2, 6, 1],
      [0, 4, 40, 0, 2, 3],
    ];
    for (const [alpha, d, base, perPos, gamma, inFlight] of cases) {
      const c = costsOf(alpha, d, base, perPos);
      const model = parallelTokensPerSec(gamma, inFlight, c),
        sim = simulate(c, gamma, inFlight, 200_000, 11);
      expect(
        Math.abs(model / sim - 1),
        `alpha ${alpha} d ${d} R ${base}+${perPos}p gamma ${gamma} F ${inFlight}: ` +
          `model ${model.toFixed(2)} sim ${sim.toFixed(2)}`,
      ).toBeLessThan(0.03);
    }
  });

  it('with every draft accepted the rate is bound by the draft, or by the window over the round trip', () => {
    const c = costsOf(1, 10, 95);
    expect(parallelTokensPerSec(1, 8, c)).toBeCloseTo(100, 9); // one token per 10 ms
    expect(parallelTokensPerSec(3, 4, c)).toBeCloseTo(100, 9);
    expect(parallelTokensPerSec(1, 1, c)).toBeCloseTo(2000 / 95, 9); // two tokens per round trip
    // close to 1 the sum over rounds is cut and the rest taken in closed form: no jump at alpha = 1
    expect(parallelTokensPerSec(1, 8, { ...c, alpha: 1 - 1e-6 })).toBeCloseTo(100, 1);
    expect(parallelTokensPerSec(2, 3, { ...c, alpha: 0.999 })).toBeLessThan(parallelTokensPerSec(2, 3, c));
    expect(parallelTokensPerSec(2, 3, { ...c, alpha: 0.999 })).toBeGreaterThan(0.97 * parallelTokensPerSec(2, 3, c));
  });

  it('a slow draft gains ~1/3 from parallel rounds, a fast one little (both ~1/(1-alpha) tokens a round trip)', () => {
    const slow = costsOf(0.8, 10, 95);
    const gain = bestParallel(slow, 1, 16, 8).tokensPerSec / bestSequential(slow, 1, 16).tokensPerSec;
    expect(gain).toBeGreaterThan(1.3);
    expect(gain).toBeLessThan(1.45);
    const fast = costsOf(0.8, 1, 95),
      bound = 1000 / ((1 - 0.8) * 95); // E[K] tokens per cycle, a cycle >= one round trip
    const par = bestParallel(fast, 1, 16, 8).tokensPerSec,
      seq = bestSequential(fast, 1, 16).tokensPerSec;
    expect(par).toBeLessThan(bound);
    expect(seq).toBeLessThan(par);
    expect(par / seq).toBeLessThan(1.2);
    expect(par).toBeGreaterThan(0.9 * bound);
  });

  it('with a fast draft the window covers the likely chain over a round trip, and no more', () => {
    for (const alpha of [0.6, 0.8, 0.9]) {
      const c = costsOf(alpha, 1, 95, 0.5);
      const best = bestParallel(c, 1, 16, 16),
        chain = 1 / (1 - alpha);
      const tokensInFlight = best.inFlight * (best.gamma + 1);
      expect(tokensInFlight, `alpha ${alpha}`).toBeGreaterThanOrEqual(chain);
      // no round past the length the chain reaches one time in 200 (P(K > k) = alpha^k)
      expect(tokensInFlight - (best.gamma + 1), `alpha ${alpha}`).toBeLessThan(Math.log(0.005) / Math.log(alpha));
      // the draft could fill 95 / ((gamma + 1) * 1 ms) rounds in one round trip; fewer are worth sending
      expect(best.inFlight, `alpha ${alpha}`).toBeLessThan(95 / (best.gamma + 1));
      // ties go to fewer rounds in flight: every smaller window is more than 1% below the best rate
      const top = (fMax: number): number =>
        Math.max(
          ...Array.from({ length: fMax * 16 }, (_, i) => parallelTokensPerSec(1 + (i % 16), 1 + Math.floor(i / 16), c)),
        );
      expect(best.tokensPerSec).toBeGreaterThanOrEqual(0.99 * top(16));
      if (best.inFlight > 1) expect(top(best.inFlight - 1)).toBeLessThan(0.99 * top(16));
    }
  });

  it('parallel rounds hide drafting behind the round trip; more rounds in flight help only a faster draft', () => {
    const c = costsOf(0.9, 5, 60);
    // the next round is drafted during the round trip
    expect(parallelTokensPerSec(8, 1, c)).toBeGreaterThan(sequentialTokensPerSec(8, c));
    expect(parallelTokensPerSec(8, 1, { ...c, alpha: 1 })).toBeCloseTo((1000 * 9) / 60, 9);
    const fast = costsOf(0.9, 2, 90);
    expect(parallelTokensPerSec(4, 3, fast)).toBeGreaterThan(parallelTokensPerSec(4, 1, fast));
    expect(parallelTokensPerSec(4, 3, { ...fast, alpha: 1 })).toBeCloseTo((1000 * 5) / 30, 9);
    // a draft slower than the round trip gains nothing from more rounds in flight
    const slow = { ...fast, draftMsPerToken: 40 };
    expect(parallelTokensPerSec(4, 3, slow)).toBeCloseTo(parallelTokensPerSec(4, 1, slow), 9);
  });

  it('the controller follows the measured acceptance', () => {
    const hi = new DraftLengthController({ parallel: false }),
      lo = new DraftLengthController({ parallel: false });
    for (let i = 0; i < 30; i++) {
      hi.observe({
        sent: hi.gamma,
        accepted: hi.gamma,
        rejected: false,
        roundTripMs: 80,
        positions: hi.gamma + 1,
        draftMsPerToken: 2,
      });
      lo.observe({
        sent: lo.gamma,
        accepted: 0,
        rejected: true,
        roundTripMs: 80,
        positions: lo.gamma + 1,
        draftMsPerToken: 2,
      });
    }
    expect(hi.alpha).toBeGreaterThan(0.9);
    expect(lo.alpha).toBeLessThan(0.1);
    expect(hi.gamma).toBeGreaterThan(lo.gamma);
    expect(lo.gamma).toBeLessThanOrEqual(2);
    expect(hi.inFlight).toBe(1);
  });

  it('in parallel mode the controller proposes gamma and rounds in flight: more at better odds, fewer if slow', () => {
    /** Rounds at a true acceptance, draft speed and round trip 95 + 0.5 ms a position, with the proposals fed back. */
    const run = (alpha: number, draftMs: number): DraftLengthController => {
      const rand = seededRandom(3),
        ctl = new DraftLengthController({ parallel: true, maxInFlight: 8 });
      for (let i = 0; i < 200; i++) {
        let accepted = 0;
        while (accepted < ctl.gamma && rand() < alpha) accepted++;
        const positions = ctl.gamma + 1;
        ctl.observe({
          sent: ctl.gamma,
          accepted,
          rejected: accepted < ctl.gamma,
          roundTripMs: 95 + 0.5 * positions,
          positions,
          draftMsPerToken: draftMs,
        });
      }
      return ctl;
    };
    const ahead = (c: DraftLengthController): number => c.inFlight * (c.gamma + 1);
    const good = run(0.9, 2),
      poor = run(0.5, 2),
      fast = run(0.8, 1),
      slow = run(0.8, 20);
    expect(good.alpha).toBeGreaterThan(poor.alpha);
    expect(ahead(good)).toBeGreaterThan(ahead(poor));
    expect(ahead(fast)).toBeGreaterThan(ahead(slow));
    expect(slow.gamma).toBe(1); // a slow draft sends each token as soon as it is drafted
    for (const c of [good, poor, fast, slow]) {
      expect(c.inFlight).toBeGreaterThanOrEqual(1);
      expect(c.inFlight).toBeLessThanOrEqual(8);
    }
    expect(slow.inFlight).toBeLessThan(fast.inFlight);
    // a cap of one in flight is respected
    const one = new DraftLengthController({ parallel: true, maxInFlight: 1 });
    one.observe({ sent: 4, accepted: 4, rejected: false, roundTripMs: 200, positions: 5, draftMsPerToken: 1 });
    expect(one.inFlight).toBe(1);
  });
});

describe('DraftLengthController.passComputeMs', () => {
  it('fits what a verification pass costs the stages: a fixed cost plus a cost per row', () => {
    const c = new DraftLengthController({ parallel: true });
    expect(c.passComputeMs(3), 'nothing reported yet').toBeNull();
    for (let i = 0; i < 20; i++) {
      const rows = 1 + (i % 5);
      c.observePass(rows, 2 + 0.5 * rows + (i % 2 ? 0.1 : -0.1));
    }
    expect(c.passComputeMs(1)).toBeCloseTo(2.5, 1);
    expect(c.passComputeMs(5)).toBeCloseTo(4.5, 1);
  });

  it('ignores reports that are not durations, and scales one size to the others without a negative cost', () => {
    const c = new DraftLengthController({ parallel: true });
    c.observePass(4, NaN);
    c.observePass(0, 3);
    expect(c.passComputeMs(4)).toBeNull();
    for (let i = 0; i < 5; i++) c.observePass(4, 6);
    expect(c.passComputeMs(1)).toBe(6); // one size seen: no cost per row can be told apart, the pass costs what it cost
  });
});
