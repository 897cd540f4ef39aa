// Emulation knobs (URL parameters) that let one machine stand in for a phone, a laptop and a desktop:
// ?slowdown=4&loadBps=2000000&linkDelayMs=50&linkBps=1000000&memoryMB=2048. The profiler, the weight
// reader, the mesh links and the engine all read them from here, so what is measured is what is emulated.
import { ShoalError } from '../errors.ts';
import type { EmulationKnobs } from './types.ts';

export const NO_EMULATION: EmulationKnobs = {
  slowdown: 1,
  loadBytesPerSec: null,
  linkDelayMs: 0,
  linkBytesPerSec: null,
  memoryBytes: null,
};
/** Largest accepted knob values (a typo must not freeze a tab). */
export const MAX_SLOWDOWN = 1000;
export const MAX_LINK_DELAY_MS = 10_000;

function positive(v: string | null, max = Infinity): number | null {
  if (v === null || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? Math.min(n, max) : null;
}

/** Parse the knobs from a URL query string; unknown or bad values fall back to "no emulation". */
export function parseEmulation(search: string): EmulationKnobs {
  const q = new URLSearchParams(search);
  const memMB = positive(q.get('memoryMB'));
  return {
    slowdown: Math.max(1, positive(q.get('slowdown'), MAX_SLOWDOWN) ?? 1),
    loadBytesPerSec: positive(q.get('loadBps')),
    linkDelayMs: positive(q.get('linkDelayMs'), MAX_LINK_DELAY_MS) ?? 0,
    linkBytesPerSec: positive(q.get('linkBps')),
    memoryBytes: memMB === null ? null : Math.round(memMB * 1024 * 1024),
  };
}

let active: EmulationKnobs = NO_EMULATION;

/** The knobs this tab runs under (set once at startup from the page URL). */
export function emulation(): EmulationKnobs {
  return active;
}

export function setEmulation(knobs: EmulationKnobs): void {
  active = { ...knobs };
}

/** Wait `ms` (at least 0); with a signal, an abort rejects at once with the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Call after every compute step that took `elapsedMs` of real time: waits (slowdown - 1) x elapsedMs so the
 * step looks `slowdown` times slower to everyone (profiler, engine, pipeline timeline). Returns the wait in ms.
 */
export async function payComputeDebt(elapsedMs: number, knobs: EmulationKnobs = active): Promise<number> {
  const waitMs = (knobs.slowdown - 1) * Math.max(0, elapsedMs);
  if (waitMs > 0) await sleep(waitMs);
  return waitMs;
}

/** Recent steps of one size a ComputeFloor remembers. */
const FLOOR_WINDOW = 31;

/**
 * The uncontended time of a repeated compute step, taken as the median of the recent steps of the same size (e.g.
 * positions run): pay the slowdown on the least of that and the step's own time. When several emulated devices share
 * this machine's cores, a step that waited for another tab's work would otherwise pay that wait slowdown times over,
 * which no real device does (it has its own processor). An 8x "phone" drafting beside three busy stage tabs on two
 * cores measured 6.0-6.8 ms a token in parallel speculative decoding against 5.1 in sequential, where the stages sit
 * idle while it drafts. The median, not the least: the fastest of a noisy window is faster than the step's typical
 * uncontended time, and the other tabs' work is short and occasional (a stage's pass is a few ms a round trip).
 */
export class ComputeFloor {
  private recent = new Map<number, number[]>();

  /** A step of `size` took `ms`: the part of it that is the step's own compute (never more than `ms`). */
  observe(size: number, ms: number): number {
    let w = this.recent.get(size);
    if (!w) {
      w = [];
      this.recent.set(size, w);
    }
    w.push(ms);
    if (w.length > FLOOR_WINDOW) w.shift();
    const sorted = [...w].sort((a, b) => a - b);
    return Math.min(ms, sorted[(sorted.length - 1) >> 1]);
  }
}

/** Run one compute step, then pay its emulation debt. Returns the result and the emulated time in ms. */
export async function emulatedCompute<T>(
  step: () => Promise<T> | T,
  knobs: EmulationKnobs = active,
): Promise<{ result: T; elapsedMs: number }> {
  const t0 = performance.now();
  const result = await step();
  await payComputeDebt(performance.now() - t0, knobs);
  return { result, elapsedMs: performance.now() - t0 };
}

/**
 * Caps a byte stream at `bytesPerSec` (null = unpaced): each chunk is handed on only at the end of its slot, so the
 * bytes delivered by time t stay at or under rate * t. The weight loader paces its reads with take() (one pacer for
 * every file of a model: the cap is the tab's); a mesh link paces its data-channel frames with reserve().
 * `creditMs`: after a gap of at most this long, the bytes the gap could have carried may go at once (the link gives
 * 1 s, as it always did; the weight loader none); after a longer gap the budget restarts from now, so a long silence
 * never buys a burst.
 */
export class Pacer {
  /** When the bytes reserved so far have all gone at the cap (performance.now clock). */
  private dueMs = -Infinity;

  constructor(
    readonly bytesPerSec: number | null,
    private readonly creditMs = 0,
  ) {
    if (bytesPerSec !== null && !(bytesPerSec > 0 && Number.isFinite(bytesPerSec))) {
      throw new ShoalError('ERR_BAD_ARGS', `a byte rate cap must be a positive number (got ${bytesPerSec})`);
    }
  }

  /** Account for `n` more bytes: how long until they may go, ms (<= 0: now). */
  reserve(n: number, nowMs = performance.now()): number {
    if (this.bytesPerSec === null) return 0;
    const from = nowMs - this.dueMs > this.creditMs ? nowMs : this.dueMs;
    this.dueMs = from + (n / this.bytesPerSec) * 1000;
    return this.dueMs - nowMs;
  }

  /** Reserve `n` bytes and wait for their slot to end. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    // Round up: timers take whole milliseconds and truncate, which would deliver a little early.
    const waitMs = Math.ceil(this.reserve(n));
    if (waitMs > 0) await sleep(waitMs, signal);
  }
}
