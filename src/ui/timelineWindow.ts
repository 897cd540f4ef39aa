// What the live timeline keeps: the most recent intervals, on an axis from the earliest one kept. Every turn adds
// hundreds of intervals (a speculative turn, ~1000), and the view redraws all of them whenever a stage reports; kept
// without bound, a long session made each redraw slower and took the page's thread from the draft and the stages.
import type { Interval } from '../planner/timeline.ts';

/** Intervals kept; past it the oldest quarter goes (pruning in steps keeps adds cheap). */
export const MAX_TIMELINE_INTERVALS = 4000;

export class IntervalWindow {
  private items: Interval[] = [];
  private endSec = 0;
  /** Start of the axis: 0 until something was dropped, then the earliest start among the intervals kept. */
  private startSec = 0;

  constructor(private readonly max = MAX_TIMELINE_INTERVALS) {}

  add(intervals: Interval[]): void {
    for (const iv of intervals) {
      this.items.push(iv);
      if (iv.endSec > this.endSec) this.endSec = iv.endSec;
    }
    if (this.items.length > this.max) {
      this.items = this.items.slice(this.items.length - Math.floor((this.max * 3) / 4));
      this.startSec = this.items.reduce((m, iv) => Math.min(m, iv.startSec), Infinity);
    }
  }

  clear(): void {
    this.items = [];
    this.endSec = 0;
    this.startSec = 0;
  }

  get intervals(): readonly Interval[] {
    return this.items;
  }

  /** The axis: [start, end] seconds (end > start). */
  range(): { startSec: number; endSec: number } {
    return { startSec: this.startSec, endSec: Math.max(this.startSec + 0.001, this.endSec) };
  }
}
