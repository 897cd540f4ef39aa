// ChunkBudget against a simulated stage whose shared passes cost a step more past a row count (as kernels do).
import { describe, expect, it } from 'vitest';
import { ChunkBudget, SHARED_PASS_SLOWDOWN } from './chunkBudget.ts';

describe('ChunkBudget', () => {
  it('settles where a shared pass stays within the allowed slowdown', () => {
    const b = new ChunkBudget(64);
    // A pass: 5 ms for its decode steps, 0.6 ms per prompt row, and 4 ms more once it holds over 8 prompt rows.
    const cost = (rows: number) => 5 + 0.6 * rows + (rows > 8 ? 4 : 0);
    const seen: number[] = [];
    for (let i = 0; i < 200; i++) {
      b.observe(2, 0, 5);
      const rows = b.promptRows;
      seen.push(rows);
      b.observe(2, rows, cost(rows));
    }
    const late = seen.slice(100);
    expect(Math.max(...late)).toBeLessThanOrEqual(5);
    expect(Math.min(...late)).toBeGreaterThanOrEqual(2);
    expect(late.every((r) => cost(r) <= SHARED_PASS_SLOWDOWN * 5 + 0.6)).toBe(true);
  });

  it('ignores passes without decode steps, and never drops below one row', () => {
    const b = new ChunkBudget(64);
    b.observe(0, 100, 1000);
    expect(b.promptRows).toBe(4);
    b.observe(1, 0, 5);
    for (let i = 0; i < 10; i++) b.observe(1, 4, 100);
    expect(b.promptRows).toBe(1);
  });
});
