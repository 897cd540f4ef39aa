// Picks alpha and theta from a labelled workload: among settings that send every "needs large" query to the
// large model (coverage 1, or at least minCoverage), the one with the fewest large-model calls, then the lowest mean
// latency (or the other way round). The paper's own thresholds are not public (PAPERS.md section 2), hence a search.
import { ShoalError } from '../errors.ts';
import type { Side, SideParams } from './predictor.ts';
import { replay } from './replay.ts';
import type { ReplayResult } from './replay.ts';
import type { PolicyConfig } from './rule.ts';
import type { Conversation } from './workload.ts';

export interface CalibrateOptions {
  /** Candidate alphas (per second of predicted extra latency); 0 is always tried. */
  alphas?: number[];
  /** Candidate thetas; default -1..1 in steps of 0.005. */
  thetas?: number[];
  objective?: 'largeCalls' | 'latency';
  /** Share of "needs large" queries that must reach the large model (default 1: no loss of quality). */
  minCoverage?: number;
}

export interface Calibration {
  policy: PolicyConfig;
  result: ReplayResult;
  tried: number;
}

const DEFAULT_ALPHAS = [0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50];
const defaultThetas = (): number[] => Array.from({ length: 401 }, (_, i) => Math.round((-1 + i * 0.005) * 1000) / 1000);

function better(a: ReplayResult, b: ReplayResult, objective: 'largeCalls' | 'latency'): boolean {
  const [a1, a2, b1, b2] =
    objective === 'largeCalls'
      ? [a.largeCalls, a.meanLatencySec, b.largeCalls, b.meanLatencySec]
      : [a.meanLatencySec, a.largeCalls, b.meanLatencySec, b.largeCalls];
  return a1 < b1 || (a1 === b1 && a2 < b2);
}

/** Calibrate the latency-aware rule (or, with name 'static', a threshold on p alone). */
export function calibrate(
  convs: Conversation[],
  params: Record<Side, SideParams>,
  name: 'latency-aware' | 'static' = 'latency-aware',
  opts: CalibrateOptions = {},
): Calibration {
  const objective = opts.objective ?? 'largeCalls';
  const alphas = name === 'static' ? [0] : [...new Set([0, ...(opts.alphas ?? DEFAULT_ALPHAS)])];
  const thetas = opts.thetas ?? defaultThetas();
  const minCoverage = opts.minCoverage ?? 1;
  if (!(minCoverage >= 0 && minCoverage <= 1))
    throw new ShoalError('ERR_BAD_ARGS', `minCoverage must be in [0, 1], got ${minCoverage}`);
  let best: Calibration | null = null;
  let tried = 0;
  for (const alpha of alphas) {
    for (const theta of thetas) {
      const policy: PolicyConfig = { name, alpha, theta };
      const result = replay(convs, policy, params);
      tried++;
      if (result.coverage < minCoverage) continue;
      if (!best || better(result, best.result, objective)) best = { policy, result, tried: 0 };
    }
  }
  // theta below every score sends everything large, so some setting always covers; this guards bad grids.
  if (!best)
    throw new ShoalError(
      'ERR_BAD_ARGS',
      'no alpha/theta in the grid keeps every "needs large" query on the large model; widen the theta grid',
    );
  return { ...best, tried };
}
