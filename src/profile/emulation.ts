// Emulation knobs (URL parameters) that let one machine stand in for a phone, a laptop and a desktop:
// ?slowdown=4&loadBps=2000000&linkDelayMs=50&linkBps=1000000&memoryMB=2048. The profiler, the weight
// reader, the mesh links and the engine all read them from here, so what is measured is what is emulated.
import type { EmulationKnobs } from './types.ts';

export const NO_EMULATION: EmulationKnobs = { slowdown: 1, loadBytesPerSec: null, linkDelayMs: 0, linkBytesPerSec: null, memoryBytes: null };
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

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
    if (!w) { w = []; this.recent.set(size, w); }
    w.push(ms);
    if (w.length > FLOOR_WINDOW) w.shift();
    const sorted = [...w].sort((a, b) => a - b);
    return Math.min(ms, sorted[(sorted.length - 1) >> 1]);
  }
}

/** Run one compute step, then pay its emulation debt. Returns the result and the emulated time in ms. */
export async function emulatedCompute<T>(step: () => Promise<T> | T, knobs: EmulationKnobs = active): Promise<{ result: T; elapsedMs: number }> {
  const t0 = performance.now();
  const result = await step();
  await payComputeDebt(performance.now() - t0, knobs);
  return { result, elapsedMs: performance.now() - t0 };
}

/**
 * Paces a byte stream to at most `bytesPerSec` (null = unpaced): await take(n) before handing on n bytes.
 * Used for the weight-loading cap (on reads) and the link bandwidth cap (on data-channel frames).
 */
export class Pacer {
  private startMs = -1;
  private bytes = 0;
  constructor(readonly bytesPerSec: number | null) {}

  /** How long to wait before `n` more bytes may go, ms (and account for them). */
  reserve(n: number, nowMs = performance.now()): number {
    if (!this.bytesPerSec) return 0;
    // Restart the budget after an idle gap, so a burst after silence is not "owed" old credit forever.
    if (this.startMs < 0 || nowMs - this.startMs > (this.bytes / this.bytesPerSec) * 1000 + 1000) {
      this.startMs = nowMs;
      this.bytes = 0;
    }
    this.bytes += n;
    return this.startMs + (this.bytes / this.bytesPerSec) * 1000 - nowMs;
  }

  async take(n: number): Promise<void> {
    const waitMs = this.reserve(n);
    if (waitMs > 1) await sleep(waitMs);
  }
}
