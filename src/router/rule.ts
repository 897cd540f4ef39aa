// The routing rule (PAPERS.md section 2, arXiv 2508.11291): large iff p - alpha * (T_large - T_small) > theta,
// beside the baselines the page offers (always small, always large, a static threshold on p).
import { ShoalError } from '../errors.ts';
import type { Side } from './predictor.ts';

export type PolicyName = 'always-small' | 'always-large' | 'static' | 'latency-aware';
export const POLICIES: readonly PolicyName[] = ['always-small', 'always-large', 'static', 'latency-aware'];

export interface PolicyConfig {
  name: PolicyName;
  /** Seconds of predicted extra latency worth one unit of p (latency-aware only). */
  alpha: number;
  /** Threshold on the score (static: on p; latency-aware: on p - alpha * dT). */
  theta: number;
}

export interface Decision {
  side: Side;
  /** The score compared with theta (p for static, p - alpha * dT for latency-aware; NaN for fixed policies). */
  score: number;
  reason: string;
}

export function checkPolicy(c: PolicyConfig): void {
  if (!POLICIES.includes(c.name))
    throw new ShoalError('ERR_BAD_ARGS', `unknown policy "${String(c.name)}" (valid: ${POLICIES.join(', ')})`);
  if (!Number.isFinite(c.alpha) || c.alpha < 0)
    throw new ShoalError('ERR_BAD_ARGS', `alpha must be a finite number >= 0, got ${c.alpha}`);
  if (!Number.isFinite(c.theta)) throw new ShoalError('ERR_BAD_ARGS', `theta must be a finite number, got ${c.theta}`);
}

/** Decide one turn from the difficulty p and both predicted latencies (seconds). */
export function decide(policy: PolicyConfig, p: number, tSmallSec: number, tLargeSec: number): Decision {
  checkPolicy(policy);
  if (!(p >= 0 && p <= 1)) throw new ShoalError('ERR_BAD_ARGS', `difficulty p must be in [0, 1], got ${p}`);
  const f = (x: number): string => x.toFixed(3);
  switch (policy.name) {
    case 'always-small':
      return { side: 'small', score: NaN, reason: 'policy: always small' };
    case 'always-large':
      return { side: 'large', score: NaN, reason: 'policy: always large' };
    case 'static': {
      const large = p > policy.theta;
      return {
        side: large ? 'large' : 'small',
        score: p,
        reason: `p ${f(p)} ${large ? '>' : '<='} theta ${f(policy.theta)}`,
      };
    }
    case 'latency-aware': {
      const dT = tLargeSec - tSmallSec;
      const score = p - policy.alpha * dT;
      const large = score > policy.theta;
      return {
        side: large ? 'large' : 'small',
        score,
        reason:
          `p ${f(p)} - alpha ${f(policy.alpha)} x dT ${f(dT)}s = ${f(score)} ` +
          `${large ? '>' : '<='} theta ${f(policy.theta)}`,
      };
    }
  }
}
