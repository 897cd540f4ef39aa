// The round scheduler alone: what the first and later rounds send, when the window is full, how far ahead to draft,
// and what a rejection throws away. No model and no pipeline: drafts are plain tokens, rounds never reply.
import { describe, expect, it } from 'vitest';
import { RoundScheduler } from './rounds.ts';
import type { Round, ScheduleControl, SchedulerOptions } from './rounds.ts';

const control: ScheduleControl = { gamma: 4, inFlight: 2, alpha: 0.8 };
const options = (o: Partial<SchedulerOptions> = {}): SchedulerOptions => ({
  parallel: true,
  sharesCompute: false,
  maxInFlight: 3,
  fixedGamma: 2,
  maxSeq: 100,
  maxTokens: 50,
  ...o,
});

/** Draft `tokens` onto the line. */
const draft = (s: RoundScheduler, ...tokens: number[]) => s.drafts.push(...tokens.map((token) => ({ token })));

/** Send the round the scheduler has ready (its reply never comes). */
function send(s: RoundScheduler): Round {
  const gamma = s.ready();
  if (gamma === null) throw new Error('no round is ready');
  const r = s.request(gamma);
  const never = new Promise<never>(() => {});
  const round: Round = {
    promise: never,
    sentAtMs: 0,
    settled: false,
    gamma,
    inputLength: r.input.length,
    draftWaitMs: 0,
  };
  s.add(round);
  return round;
}

describe('round scheduler', () => {
  it("a first round starts where the target's caches stop holding the prompt, and sends its drafts after it", () => {
    const s = new RoundScheduler([1, 2, 3, 4], [1, 2, 9], options({ parallel: false, maxInFlight: 1 }), control);
    expect(s.targetPos).toBe(2);
    expect(s.ready(), 'no drafts yet').toBeNull();
    expect(s.draftsWanted()).toBe(2);
    draft(s, 10, 11);
    expect(s.request(2)).toEqual({ pos0: 2, input: [3, 4, 10, 11], keepFrom: 1 });
    send(s);
    expect(s.ready(), 'sequential: one round at a time').toBeNull();
    expect(s.draftsWanted(), 'sequential: nothing drafted ahead').toBe(0);
  });

  it('a cached prompt is sent from its last token, which gives the first prediction', () => {
    expect(new RoundScheduler([1, 2, 3], [1, 2, 3, 4], options(), control).targetPos).toBe(2);
  });

  it("later rounds start at the previous round's candidate and go out while the window has room", () => {
    const s = new RoundScheduler([1, 2, 3], [], options(), control);
    draft(s, 10, 11);
    send(s);
    expect([s.covered(), s.projected()]).toEqual([2, 3]);
    // The next round needs the candidate (drafts[2]) and 2 more.
    expect(s.draftsWanted()).toBe(5);
    draft(s, 12, 13);
    expect(s.ready()).toBeNull();
    draft(s, 14);
    expect(s.request(2)).toEqual({ pos0: 5, input: [12, 13, 14], keepFrom: 0 });
    send(s);
    expect([s.covered(), s.projected()]).toEqual([5, 6]);
    draft(s, 15, 16, 17);
    send(s);
    draft(s, 18, 19, 20);
    expect(s.ready(), 'three in flight: the window is full').toBeNull();
  });

  it('rounds stop at max tokens: a round that would emit past them is not sent, only its candidate is drafted', () => {
    const s = new RoundScheduler([1, 2, 3], [], options({ maxTokens: 4 }), control);
    draft(s, 10, 11);
    send(s); // emits at most 3 of the 4 tokens
    expect(s.nextGamma()).toBe(0);
    draft(s, 12);
    expect(s.ready(), 'a round of just the candidate').toBe(0);
    send(s);
    expect(s.nextGamma()).toBeLessThan(0);
    expect(s.draftsWanted(), 'nothing more than the last candidate').toBe(s.covered() + 1);
  });

  it('a tab that also runs a stage sends rounds ahead only on good odds; under auto the controller sets it', () => {
    const shared = new RoundScheduler([1, 2], [], options({ sharesCompute: true }), { ...control, alpha: 0.5 });
    draft(shared, 10, 11);
    send(shared);
    draft(shared, 12, 13, 14);
    expect(shared.aheadAllowed(), '0.5^2 = 0.25: just good enough').toBe(true);
    const unlikely = new RoundScheduler([1, 2], [], options({ sharesCompute: true, fixedGamma: 3 }), {
      ...control,
      alpha: 0.5,
    });
    expect(unlikely.aheadAllowed(), '0.5^3').toBe(false);
    draft(unlikely, 10, 11, 12);
    send(unlikely);
    expect(unlikely.draftsWanted(), 'only the candidate').toBe(4);
    const auto = new RoundScheduler([1, 2], [], options({ fixedGamma: null, maxInFlight: 8 }), control);
    expect([auto.gamma, auto.inFlightLimit()]).toEqual([4, 2]);
  });

  it('an accepted round moves the line on; a rejection drops the drafts and the rounds on top of them', () => {
    const s = new RoundScheduler([1, 2, 3], [], options(), control);
    draft(s, 10, 11, 12, 13, 14);
    send(s);
    const second = send(s);
    s.shift();
    s.advance(3); // the first round's 2 drafts and the candidate were emitted
    expect(s.drafts.map((d) => d.token)).toEqual([13, 14]);
    expect(s.inflight).toEqual([second]);
    expect(s.discard(1)).toEqual({ discarded: 1, stale: [second] });
    expect([s.drafts, s.inflight]).toEqual([[], []]);
  });
});
