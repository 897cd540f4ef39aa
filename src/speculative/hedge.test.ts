// The hedge calibrator learns where the draft's second choice wins from judged positions; the prior rules until then.
// The hedge policy's send, late and wait rules run on a fake clock: each case sets the time and reads the decision.
import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.ts';
import { alternatives, HedgeCalibrator, HedgePolicy, hedgePays, hitWorth, tooLateToSend } from './hedge.ts';
import type { Hedge, HedgeCosts, HedgeLine } from './hedge.ts';

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
    for (let i = 0; i < 50; i++) {
      c.observe(0.1, true, 1);
      c.observe(0.1, false, 2);
    }
    expect(c.altWins(0.1, 0.5, 1)).toBeGreaterThan(0.9);
    expect(c.altWins(0.1, 0.5, 2)).toBeLessThan(0.1);
    expect(c.altWins(0.1, 0.5, 3), 'a choice never observed: its prior').toBe(0.5);
    expect([c.samples(1), c.samples(2), c.samples(3)]).toEqual([50, 50, 0]);
  });

  it('alternatives: the next choices after the greedy token, best first, with gaps and shares of the top ones', () => {
    const logits = Float32Array.from([0.5, 3, -1, 2.5, 2.9, 2.5]);
    const alts = alternatives(logits, 1, 2);
    expect(alts.map((a) => a.token)).toEqual([4, 3]); // 2.9, then the first of the two 2.5s
    expect(alts[0].gap).toBeCloseTo(0.1, 6);
    expect(alts[1].gap).toBeCloseTo(0.5, 6);
    const z = 1 + Math.exp(-0.1) + Math.exp(-0.5);
    expect(alts[0].share).toBeCloseTo(Math.exp(-0.1) / z, 6);
    expect(alts[1].share).toBeCloseTo(Math.exp(-0.5) / z, 6);
    const few = alternatives(Float32Array.from([1, 2]), 1, 2);
    expect(
      few.map((a) => a.token),
      'fewer tokens than asked for',
    ).toEqual([0]);
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

/** A clock that moves only when told. */
class FakeClock implements Clock {
  constructor(public t = 0) {}
  nowMs(): number {
    return this.t;
  }
}

/**
 * Costs with easy figures: acceptance 0.8, a round trip of 40 ms + 2 ms a position, a pass of the stages 0.5 ms, and
 * a slow draft (100 ms a token), so a hedge carries no drafts: the alternative alone, one row, whose hit saves
 * hitWorth(0.8, 1) = 20% of a round trip.
 */
const COSTS: HedgeCosts = {
  alpha: 0.8,
  draftMsPerToken: 100,
  roundTripModel: () => ({ baseMs: 40, perPositionMs: 2 }),
  passComputeMs: () => 0.5,
};
const alt = (token: number, share = 0.45) => ({ alts: [{ token, gap: 0.2, share }] });

/** Two rounds of gamma 2 in flight: rounds[0] judges drafts 0-2, rounds[1] drafts 3-5 (its candidate's row last). */
function twoRounds(round2SentAtMs: number): HedgeLine {
  return {
    pos: 10,
    drafts: [{}, alt(101), {}, {}, alt(104), {}],
    rounds: [
      { gamma: 2, sentAtMs: 0 },
      { gamma: 2, sentAtMs: round2SentAtMs },
    ],
    covered: 5,
    maxSeq: 100,
    gamma: 2,
  };
}

/** A hedge in flight whose reply never comes (the policy reads only its position, tokens and times). */
function hedge(pos: number, tokens: number[], sentAtMs: number, settled = false): Hedge {
  return { promise: new Promise(() => {}), pos, tokens, sentAtMs, settled };
}

describe('hedge policy (fake clock)', () => {
  // A round of gamma 2 takes 40 + 2 x 3 = 46 ms, so a one-row hedge is late from 20% of that, 9.2 ms, after its round.
  it('the late rule: a hedge goes only while its round is younger than what a hit saves of a round trip', () => {
    expect(tooLateToSend(9.1, 46, 1, 0.8)).toBe(false);
    expect(tooLateToSend(9.2, 46, 1, 0.8)).toBe(true);
    expect(tooLateToSend(30, 46, 1, 0.2), 'at low acceptance a hit saves 80% of a round trip: in time').toBe(false);
    expect(tooLateToSend(Number.NaN, 46, 1, 0.8), 'no age known: late').toBe(true);
  });

  it('picks the likeliest rejection among positions whose round is in time, by the clock', () => {
    const clock = new FakeClock();
    const p = new HedgePolicy(4, new HedgeCalibrator(), COSTS, clock);
    clock.t = 5; // both rounds young: the earlier position is likelier reached (0.8 x 0.45 against 0.8^4 x 0.45)
    expect(p.pick(twoRounds(3))).toEqual({ k: 1, alt: 101, drafts: 0 });
    clock.t = 9.1;
    expect(p.pick(twoRounds(3))?.k).toBe(1);
    clock.t = 9.2; // rounds[0] is 9.2 ms out: its positions are too late; rounds[1] (6.2 ms) still judges drafts 3-5
    expect(p.pick(twoRounds(3))).toEqual({ k: 4, alt: 104, drafts: 0 });
    clock.t = 12.2; // both too late
    expect(p.pick(twoRounds(3))).toBeNull();
  });

  it('sends nothing without rounds in flight or room, at the cap, or for a pair tried since the last rejection', () => {
    const clock = new FakeClock(1);
    const p = new HedgePolicy(1, new HedgeCalibrator(), COSTS, clock);
    expect(p.pick({ ...twoRounds(0), rounds: [] })).toBeNull();
    expect(p.pick({ ...twoRounds(0), maxSeq: 11 }), 'position 11 and later do not fit').toBeNull();
    expect(p.pick({ ...twoRounds(0), maxSeq: 12 })?.k).toBe(1);
    p.claim(11, 101);
    expect(p.pick(twoRounds(0))?.k, 'position 11 tried: the next best').toBe(4);
    p.add(hedge(14, [104], 1));
    expect(p.pick(twoRounds(0)), 'one in flight, at the cap of one').toBeNull();
    expect(p.restart().map((h) => h.pos)).toEqual([14]);
    expect(p.pick(twoRounds(0))?.k, 'after a rejection every pair may be tried again').toBe(1);
  });

  it('a hedge pays only when its chance of a hit times what a hit saves beats its pass', () => {
    const clock = new FakeClock(1);
    const dear = new HedgePolicy(4, new HedgeCalibrator(), { ...COSTS, passComputeMs: () => 3 }, clock);
    // Position 11: 0.36 x 20% x 46 ms = 3.3 ms against 3 ms pays; position 14: 1.7 ms does not.
    expect(dear.pick(twoRounds(0))?.k).toBe(1);
    expect(dear.pick({ ...twoRounds(0), drafts: [{}, {}, {}, {}, alt(104), {}] })).toBeNull();
  });

  it("carries drafts within 5% of a round trip of the draft's time, at most 4", () => {
    const clock = new FakeClock();
    expect(new HedgePolicy(4, new HedgeCalibrator(), { ...COSTS, draftMsPerToken: 1 }, clock).draftsFor(100)).toBe(4);
    expect(new HedgePolicy(4, new HedgeCalibrator(), { ...COSTS, draftMsPerToken: 2 }, clock).draftsFor(100)).toBe(2);
    expect(new HedgePolicy(4, new HedgeCalibrator(), COSTS, clock).draftsFor(100)).toBe(0);
    const fast = new HedgePolicy(4, new HedgeCalibrator(), { ...COSTS, draftMsPerToken: 1 }, clock);
    clock.t = 1; // a round trip of 46 ms gives 2.3 ms of drafting: 2 drafts after the alternative
    expect(fast.pick(twoRounds(0))).toEqual({ k: 1, alt: 101, drafts: 2 });
  });

  // A one-row hedge's round trip is 40 + 2 = 42 ms: a hit is worth waiting for while 20% of it (8.4 ms) remains.
  it('the wait rule: a hit is worth waiting for only when its reply is due within what it saves', () => {
    const clock = new FakeClock();
    const p = new HedgePolicy(4, new HedgeCalibrator(), COSTS, clock);
    const h = hedge(12, [7], 100);
    p.add(h);
    expect(p.hitAt(12, 7)).toBe(h);
    expect(p.hitAt(12, 8), 'another token at that position: no hit').toBeUndefined();
    expect(p.hitAt(13, 7)).toBeUndefined();
    clock.t = 120; // due at 142: 22 ms away
    expect(p.worthWaiting(h)).toBe(false);
    clock.t = 133.7; // 8.3 ms away
    expect(p.worthWaiting(h)).toBe(true);
    clock.t = 133.5;
    expect(p.worthWaiting(h)).toBe(false);
    expect(p.worthWaiting({ ...h, settled: true }), 'a reply already in costs no wait').toBe(true);
    clock.t = 200; // overdue: any moment now
    expect(p.worthWaiting(h)).toBe(true);
  });

  it('drop keeps the hedges still ahead of the line and returns the others', () => {
    const p = new HedgePolicy(4, new HedgeCalibrator(), COSTS, new FakeClock());
    for (const pos of [10, 12, 15]) p.add(hedge(pos, [1], 0));
    expect(p.drop((h) => h.pos >= 12).map((h) => h.pos)).toEqual([10]);
    expect(p.hedges.map((h) => h.pos)).toEqual([12, 15]);
  });
});
