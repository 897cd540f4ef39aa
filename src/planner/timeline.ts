// Per-device timeline of intervals: the simulator writes the planned one, the live pipeline records the actual one.

export type IntervalKind = 'load' | 'upload' | 'compute' | 'send' | 'recv' | 'idle';

export interface Interval {
  device: string;
  kind: IntervalKind;
  startSec: number;
  endSec: number;
  /** 1-based decoder layer, as in plans. */
  layer?: number;
  /** 0 for the prefill (first token), k for the k-th decode step. */
  tokenIndex?: number;
  bytes?: number;
  label?: string;
  /** The conversation(s) the work was for (comma-separated when a pass batched several). */
  conv?: string;
  /** A load's source: the origin, this tab's cache, peers, or nothing moved (already in memory). */
  source?: 'origin' | 'cache' | 'peer' | 'memory';
}

export interface Timeline {
  devices: string[];
  intervals: Interval[];
  ttftSec?: number;
}

/** Fill each device's gaps between t = 0 and its last activity with 'idle' intervals (sorted by start). */
export function withIdle(t: Timeline, minGapSec = 0): Timeline {
  const intervals: Interval[] = [];
  for (const device of t.devices) {
    const own = t.intervals
      .filter((iv) => iv.device === device && iv.kind !== 'idle')
      .sort((a, b) => a.startSec - b.startSec);
    let busyUntil = 0;
    for (const iv of own) {
      if (iv.startSec - busyUntil > minGapSec)
        intervals.push({ device, kind: 'idle', startSec: busyUntil, endSec: iv.startSec });
      busyUntil = Math.max(busyUntil, iv.endSec);
      intervals.push(iv);
    }
  }
  return { ...t, intervals };
}
