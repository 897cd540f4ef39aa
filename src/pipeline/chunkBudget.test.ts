// ChunkBudget on an injected clock against a simulated stage whose passes have a fixed cost beside a cost per row.
import { describe, expect, it } from 'vitest';
import { CHUNK_PASSES, ChunkBudget, DECODE_SLOWDOWN, MAX_SHARE, MIN_SHARE } from './chunkBudget.ts';

describe('ChunkBudget', () => {
  it('sizes chunks so their extra time is CHUNK_PASSES decode passes, whatever a pass costs to start', () => {
    const b = new ChunkBudget(64, () => 0);
    // A pass: 5 ms for its decode step; a prompt beside it costs 4 ms to start and 0.5 ms a row.
    const cost = (rows: number) => 5 + (rows > 0 ? 4 + 0.5 * rows : 0);
    for (let i = 0; i < 50; i++) {
      b.observe(1, 0, cost(0));
      b.observe(1, b.promptRows, cost(b.promptRows));
    }
    expect(Math.abs(cost(b.promptRows) - 5 - CHUNK_PASSES * 5)).toBeLessThanOrEqual(0.5);
    expect(b.promptRows).toBeGreaterThan(1);
  });

  it('spaces chunks so prompt work takes its share of the time, and waits for nothing before the first', () => {
    let now = 0;
    const b = new ChunkBudget(64, () => now);
    expect(b.waitMs()).toBe(0);
    b.observe(1, 0, 5);
    now = 100;
    b.observe(1, 8, 15); // 10 ms over the decode pass
    expect(b.waitMs()).toBeCloseTo(10 * (1 / b.share - 1));
    now = 100 + b.waitMs();
    expect(b.waitMs()).toBe(0);
    expect(b.lastChunkAt).toBe(100);
  });

  it('halves the share when decode steps slow past DECODE_SLOWDOWN, grows it back slowly, within bounds', () => {
    const b = new ChunkBudget(64, () => 0);
    const start = b.share;
    b.decodeSlowdown(DECODE_SLOWDOWN + 0.1);
    expect(b.share).toBeCloseTo(start / 2);
    for (let i = 0; i < 20; i++) b.decodeSlowdown(3);
    expect(b.share).toBe(MIN_SHARE);
    b.decodeSlowdown(1.1);
    expect(b.share).toBeGreaterThan(MIN_SHARE);
    expect(b.share).toBeLessThan(2 * MIN_SHARE);
    for (let i = 0; i < 10_000; i++) b.decodeSlowdown(1);
    expect(b.share).toBe(MAX_SHARE);
  });

  it('keeps its row count on a short tail, and never goes below one row or above its maximum', () => {
    const b = new ChunkBudget(16, () => 0);
    b.observe(1, 0, 5);
    const rows = b.promptRows;
    b.observe(1, 2, 500);
    expect(b.promptRows, 'a 2-row tail').toBe(rows);
    for (let i = 0; i < 20; i++) b.observe(1, b.promptRows, 1000);
    expect(b.promptRows).toBe(1);
    for (let i = 0; i < 20; i++) b.observe(1, b.promptRows, 5.001);
    expect(b.promptRows).toBe(16);
  });
});
