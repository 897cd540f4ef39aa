// Replays a labelled workload through the rule with the latency model (no engines): each side keeps its own
// cached prefix per conversation, so switching pays the other side's re-prefill and staying reuses the cache.
import { LatencyPredictor } from './predictor.ts';
import type { Side, SideParams } from './predictor.ts';
import { decide } from './rule.ts';
import type { PolicyConfig } from './rule.ts';
import type { Conversation } from './workload.ts';

export interface ReplayResult {
  turns: number;
  largeCalls: number;
  needsLarge: number;
  /** "Needs large" queries that reached the large model. */
  needsLargeCovered: number;
  /** needsLargeCovered / needsLarge (1 when there are none). */
  coverage: number;
  meanLatencySec: number;
  /** Turns that ran on the other side than the conversation's previous turn. */
  switches: number;
}

/**
 * `truth` gives the latency a turn really takes (default: the same parameters the predictor uses); the
 * predictor only knows the expected output length, the truth uses the turn's own.
 */
export function replay(
  convs: Conversation[],
  policy: PolicyConfig,
  params: Record<Side, SideParams>,
  truth: Record<Side, SideParams> = params,
): ReplayResult {
  const predictor = new LatencyPredictor(params);
  const real = new LatencyPredictor(truth);
  let turns = 0,
    largeCalls = 0,
    needsLarge = 0,
    covered = 0,
    totalSec = 0,
    switches = 0;
  for (const c of convs) {
    const cached: Record<Side, number> = { small: 0, large: 0 };
    let history = 0;
    let last: Side | null = null;
    for (const t of c.turns) {
      const contextTokens = history + t.queryTokens;
      const q = (side: Side) => ({ contextTokens, cachedTokens: cached[side], historyTokens: history });
      const d = decide(
        policy,
        t.p,
        predictor.predict('small', q('small')).totalSec,
        predictor.predict('large', q('large')).totalSec,
      );
      const side = d.side;
      const predicted = predictor.predict(side, q(side));
      const actual = real.predict(side, { ...q(side), outTokens: t.outTokens });
      predictor.observe(side, predicted, {
        ttftSec: actual.fixedSec + actual.prefillSec,
        decodeSec: actual.decodeSec,
        outTokens: t.outTokens,
      });
      totalSec += actual.totalSec;
      turns++;
      if (side === 'large') largeCalls++;
      if (t.needsLarge) {
        needsLarge++;
        if (side === 'large') covered++;
      }
      if (last && last !== side) switches++;
      last = side;
      // Every token but the last was fed back through that side's cache.
      cached[side] = contextTokens + t.outTokens - 1;
      history = contextTokens + t.outTokens;
    }
  }
  return {
    turns,
    largeCalls,
    needsLarge,
    needsLargeCovered: covered,
    coverage: needsLarge ? covered / needsLarge : 1,
    meanLatencySec: turns ? totalSec / turns : 0,
    switches,
  };
}
