import { describe, expect, it } from 'vitest';
import { ComputeFloor } from './emulation.ts';

describe('ComputeFloor', () => {
  it('pays on the median of the recent steps of a size, never on more than the step itself took', () => {
    const f = new ComputeFloor();
    expect(f.observe(1, 5)).toBe(5); // nothing else known: the step as measured
    expect(f.observe(1, 4)).toBe(4); // faster than the median: its own time
    expect(f.observe(1, 40)).toBe(5); // slowed by another tab: only the median 5 counts as its own
    expect(f.observe(3, 12)).toBe(12); // sizes are kept apart
    expect(f.observe(1, 6)).toBe(5);
  });

  it('forgets old steps, so the median follows a step that grows slower (a longer context)', () => {
    const f = new ComputeFloor();
    for (let i = 0; i < 31; i++) f.observe(1, 1);
    let last = 0;
    for (let i = 0; i < 16; i++) last = f.observe(1, 2);
    expect(last).toBe(2);
  });
});
