// The repair after a loss: only the lost tabs' layers change hands, each to its neighbour upstream (downstream for
// the first stage); and the conversion to the planner's 1-based stages.
import { describe, expect, it } from 'vitest';
import { assignmentsToPlan, repairPlan } from './scenario.ts';

const chain = [
  { peer: 'a', start: 0, end: 3 },
  { peer: 'b', start: 3, end: 6 },
  { peer: 'c', start: 6, end: 9 },
  { peer: 'd', start: 9, end: 12 },
];

describe('repairPlan', () => {
  it('gives a lost middle or last stage to the survivor upstream, a lost first stage to the one downstream', () => {
    expect(repairPlan(chain, new Set(['a', 'c', 'd']))).toEqual([
      { peer: 'a', start: 0, end: 6 },
      { peer: 'c', start: 6, end: 9 },
      { peer: 'd', start: 9, end: 12 },
    ]);
    expect(repairPlan(chain, new Set(['a', 'b', 'c']))?.at(-1)).toEqual({ peer: 'c', start: 6, end: 12 });
    expect(repairPlan(chain, new Set(['c', 'd']))).toEqual([
      { peer: 'c', start: 0, end: 9 },
      { peer: 'd', start: 9, end: 12 },
    ]);
    expect(repairPlan(chain, new Set(['a', 'd']))).toEqual([
      { peer: 'a', start: 0, end: 9 },
      { peer: 'd', start: 9, end: 12 },
    ]);
    expect(repairPlan(chain, new Set())).toBeNull();
  });

  it('converts engine ranges to the planner stages', () => {
    expect(assignmentsToPlan(chain.slice(0, 1))).toEqual({ stages: [{ device: 'a', first: 1, last: 3 }] });
  });
});
