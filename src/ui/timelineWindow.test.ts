// The timeline keeps a bounded window of the newest intervals, with its axis starting at the oldest one kept.
import { describe, expect, it } from 'vitest';
import type { Interval } from '../planner/timeline.ts';
import { IntervalWindow } from './timelineWindow.ts';

const iv = (i: number): Interval => ({ device: i % 2 ? 'a' : 'b', kind: 'compute', startSec: i, endSec: i + 0.5 });

describe('timeline window', () => {
  it('keeps everything (axis from 0) until the cap, then the newest three quarters (axis from the oldest kept)', () => {
    const w = new IntervalWindow(8);
    w.add([iv(1), iv(2), iv(3)]);
    expect(w.intervals).toHaveLength(3);
    expect(w.range()).toEqual({ startSec: 0, endSec: 3.5 });
    w.add([4, 5, 6, 7, 8, 9].map(iv)); // 9 > 8: the oldest go, 6 stay
    expect(w.intervals.map((x) => x.startSec)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(w.range()).toEqual({ startSec: 4, endSec: 9.5 });
    for (let i = 10; i < 1000; i++) w.add([iv(i)]);
    expect(w.intervals.length).toBeLessThanOrEqual(8);
    expect(w.intervals.at(-1)!.startSec).toBe(999);
    w.clear();
    expect(w.intervals).toHaveLength(0);
    expect(w.range()).toEqual({ startSec: 0, endSec: 0.001 });
  });
});
