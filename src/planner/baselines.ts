// Baseline splits: single, even, harmonic, memory (as exo does), compute. Contiguous, strongest devices first.
import type { Problem } from './scenario.ts';
import { evaluatePlan, type Seg } from './costModel.ts';
import type { StrategyName } from './types.ts';

/**
 * Stronger first. "Strongest" = the device that would run the whole model alone soonest under the scenario's cost
 * model (memory ignored): it weighs load speed against compute the way a cold start does. In the paper's setting this
 * is device 1, 2, 3, 4 at every prompt length, whereas effective FLOP/s alone would put device 2 first at t = 256.
 */
export function strengthOrder(p: Problem): number[] {
  const L = p.layers.length;
  const alone = p.devices.map((_, d) => evaluatePlan(p, [{ d, s: 0, e: L - 1 }]).objectiveSec);
  return p.devices.map((_, i) => i).sort((a, b) => alone[a] - alone[b] || a - b);
}

/** Split L layers in proportion to weights (largest remainder), in the given device order; 0-layer devices drop out. */
export function proportionalSplit(L: number, order: number[], weight: (d: number) => number): Seg[] {
  const w = order.map(weight);
  const total = w.reduce((a, b) => a + b, 0);
  const exact = w.map((x) => (total > 0 ? (x / total) * L : L / order.length));
  const counts = exact.map(Math.floor);
  let left = L - counts.reduce((a, b) => a + b, 0);
  // largest remainders first; ties go to the stronger (earlier) device
  const byRemainder = exact.map((x, i) => ({ r: x - Math.floor(x), i })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % byRemainder.length, left--) counts[byRemainder[k].i]++;
  const segs: Seg[] = [];
  let s = 0;
  order.forEach((d, i) => {
    if (counts[i] === 0) return;
    segs.push({ d, s, e: s + counts[i] - 1 });
    s += counts[i];
  });
  return segs;
}

export type BaselineName = Exclude<StrategyName, 'csgo'>;

export function baseline(p: Problem, name: BaselineName): Seg[] {
  const L = p.layers.length;
  const order = strengthOrder(p);
  const dev = (d: number) => p.devices[d];
  switch (name) {
    case 'single':
      // PAPERS.md: everything on the strongest device, memory ignored (the plan may not fit).
      return [{ d: order[0], s: 0, e: L - 1 }];
    case 'even':
      return proportionalSplit(L, order, () => 1);
    case 'harmonic': {
      // Harmonic mean of each device's share of the total compute and of the total load speed (units cancel).
      const sumC = p.devices.reduce((a, d) => a + d.flops, 0);
      const sumR = p.devices.reduce((a, d) => a + d.loadBytesPerSec, 0);
      return proportionalSplit(L, order, (d) => 2 / (sumC / dev(d).flops + sumR / dev(d).loadBytesPerSec));
    }
    case 'memory':
      return proportionalSplit(L, order, (d) => dev(d).memoryBytes);
    case 'compute':
      return proportionalSplit(L, order, (d) => dev(d).flops);
  }
}
