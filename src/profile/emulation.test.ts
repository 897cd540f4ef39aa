import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ComputeFloor, Pacer } from './emulation.ts';

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

/** The link's pacer before there was one Pacer: a budget from `start` that restarts after an idle second. */
function linkPacerBefore(bytesPerSec: number) {
  let startMs = -1,
    bytes = 0;
  return (n: number, nowMs: number): number => {
    if (startMs < 0 || nowMs - startMs > (bytes / bytesPerSec) * 1000 + 1000) {
      startMs = nowMs;
      bytes = 0;
    }
    bytes += n;
    return startMs + (bytes / bytesPerSec) * 1000 - nowMs;
  };
}

/** The weight loader's pacer before: each chunk's slot starts when the last one ended, or now. */
function loadPacerBefore(bytesPerSec: number) {
  let nextFreeMs = 0;
  return (n: number, nowMs: number): number => {
    nextFreeMs = Math.max(nowMs, nextFreeMs) + (n / bytesPerSec) * 1000;
    return nextFreeMs - nowMs;
  };
}

describe('Pacer', () => {
  it("holds each chunk to its slot's end; credit lets a stream that fell behind catch up; silence restarts it", () => {
    const strict = new Pacer(1000);
    expect([strict.reserve(100, 0), strict.reserve(100, 50), strict.reserve(100, 500)]).toEqual([100, 150, 100]);
    const link = new Pacer(1000, 1000);
    expect([link.reserve(100, 0), link.reserve(100, 500), link.reserve(100, 2000)]).toEqual([100, -300, 100]);
    expect(new Pacer(null).reserve(1e9, 0)).toBe(0);
    expect(() => new Pacer(0)).toThrow(/positive number/);
  });

  it('waits out the slot in take() and stops waiting when aborted', async () => {
    const p = new Pacer(1_000_000);
    const t0 = performance.now();
    await p.take(20_000); // 20 ms
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
    const abort = new AbortController();
    const slow = new Pacer(1).take(10, abort.signal); // 10 s
    abort.abort(new Error('stop'));
    await expect(slow).rejects.toThrow('stop');
  });

  it('paces exactly as the two pacers it replaced (link: 1 s of credit; weights: none)', () => {
    const step = fc.record({
      n: fc.integer({ min: 1, max: 200_000 }),
      dtMs: fc.double({ min: 0, max: 3000, noNaN: true }),
    });
    const steps = fc.array(step, { maxLength: 60 });
    fc.assert(
      fc.property(fc.integer({ min: 1_000, max: 10_000_000 }), steps, (bytesPerSec, seq) => {
        const link = new Pacer(bytesPerSec, 1000),
          load = new Pacer(bytesPerSec);
        const linkBefore = linkPacerBefore(bytesPerSec),
          loadBefore = loadPacerBefore(bytesPerSec);
        let now = 5;
        for (const { n, dtMs } of seq) {
          now += dtMs;
          expect(link.reserve(n, now)).toBeCloseTo(linkBefore(n, now), 6);
          expect(load.reserve(n, now)).toBeCloseTo(loadBefore(n, now), 6);
        }
      }),
    );
  });
});
