// Adaptive draft length: the expected-tokens formula, and the chosen gamma moves the way the costs say it should.
import { describe, expect, it } from 'vitest';
import { DraftLengthController, bestGamma, expectedTokens, roundMs } from './draftLength.ts';

describe('draft length', () => {
  it('expected tokens per round: 1 + alpha + ... + alpha^gamma', () => {
    expect(expectedTokens(0.5, 3)).toBeCloseTo(1 + 0.5 + 0.25 + 0.125, 12);
    expect(expectedTokens(1, 4)).toBe(5);
    expect(expectedTokens(0, 7)).toBe(1);
  });

  it('longer round trips and higher acceptance call for longer drafts', () => {
    const costs = (alpha: number, linkMs: number) => ({ alpha, draftMsPerToken: 2, roundTripMs: (p: number) => linkMs + 1 * p });
    expect(bestGamma(costs(0.8, 200), false, 1, 32)).toBeGreaterThan(bestGamma(costs(0.8, 10), false, 1, 32));
    expect(bestGamma(costs(0.9, 50), false, 1, 32)).toBeGreaterThan(bestGamma(costs(0.4, 50), false, 1, 32));
  });

  it('parallel rounds hide drafting behind the round trip', () => {
    const c = { alpha: 0.9, draftMsPerToken: 5, roundTripMs: () => 60 };
    expect(roundMs(8, c, true)).toBeLessThan(roundMs(8, c, false));
    expect(roundMs(8, { ...c, alpha: 1 }, true)).toBe(60);
  });

  it('rounds sent ahead overlap their round trips: with a fast draft and good odds more in flight is cheaper', () => {
    const c = { alpha: 0.9, draftMsPerToken: 2, roundTripMs: () => 90 };
    expect(roundMs(4, c, true, 3)).toBeLessThan(roundMs(4, c, true, 1));
    expect(roundMs(4, { ...c, alpha: 1 }, true, 3)).toBe(30);
    // a draft slower than the round trip gains nothing from more rounds in flight
    const slow = { ...c, draftMsPerToken: 40 };
    expect(roundMs(4, slow, true, 3)).toBe(roundMs(4, slow, true, 1));
  });

  it('the controller follows the measured acceptance', () => {
    const hi = new DraftLengthController({ parallel: false }), lo = new DraftLengthController({ parallel: false });
    for (let i = 0; i < 30; i++) {
      hi.observe({ sent: hi.gamma, accepted: hi.gamma, rejected: false, roundTripMs: 80, positions: hi.gamma + 1, draftMsPerToken: 2 });
      lo.observe({ sent: lo.gamma, accepted: 0, rejected: true, roundTripMs: 80, positions: lo.gamma + 1, draftMsPerToken: 2 });
    }
    expect(hi.alpha).toBeGreaterThan(0.9);
    expect(lo.alpha).toBeLessThan(0.1);
    expect(hi.gamma).toBeGreaterThan(lo.gamma);
    expect(lo.gamma).toBeLessThanOrEqual(2);
  });
});
