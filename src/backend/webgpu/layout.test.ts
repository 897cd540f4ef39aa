// Splitting weights across storage bindings and the fit check, in Node (pure planning, no GPU needed).
import { describe, expect, it } from 'vitest';
import { checkFits, grid2d, planRowChunks } from './layout.ts';

describe('planRowChunks', () => {
  it('keeps a tensor whole when it fits one binding, padded to 4 bytes', () => {
    expect(planRowChunks('w', [3, 3], 'BF16', 1024)).toEqual([
      { rowStart: 0, rows: 3, byteOffset: 0, byteLength: 18, paddedBytes: 20 },
    ]);
  });

  it('splits by rows so every chunk (with padding) fits and the chunks cover every row once', () => {
    for (const [rows, cols, limit] of [
      [151936, 896, 128 * 2 ** 20],
      [65, 7, 100],
      [257, 63, 1000],
      [7, 1, 8],
    ]) {
      const chunks = planRowChunks('emb', [rows, cols], 'BF16', limit);
      let next = 0;
      for (const c of chunks) {
        expect(c.rowStart).toBe(next);
        expect(c.paddedBytes).toBeLessThanOrEqual(limit);
        expect(c.byteOffset).toBe(c.rowStart * cols * 2);
        next += c.rows;
      }
      expect(next).toBe(rows);
    }
    // Qwen2.5-0.5B's embedding (272 MB in bf16) on a 128 MiB phone binding: three chunks.
    expect(planRowChunks('emb', [151936, 896], 'BF16', 128 * 2 ** 20)).toHaveLength(3);
  });

  it('refuses a row wider than a binding with ERR_DOES_NOT_FIT', () => {
    expect(() => planRowChunks('wide', [2, 1000], 'F32', 1024)).toThrow(
      expect.objectContaining({ code: 'ERR_DOES_NOT_FIT' }),
    );
  });
});

describe('checkFits', () => {
  const limits = { maxBindingBytes: 1 << 20, maxBufferBytes: 1 << 20 };
  it('returns the padded bytes the weights take', () => {
    expect(
      checkFits(
        [
          { name: 'a', shape: [3], dtype: 'F16' },
          { name: 'b', shape: [4, 4], dtype: 'F32' },
        ],
        limits,
      ),
    ).toBe(8 + 64);
  });
  it('throws ERR_DOES_NOT_FIT over the memory budget, counting the extra bytes', () => {
    const t = [{ name: 'w', shape: [256, 256], dtype: 'F32' as const }];
    expect(checkFits(t, { ...limits, memoryBudgetBytes: 300_000 })).toBe(262144);
    expect(() => checkFits(t, { ...limits, memoryBudgetBytes: 300_000 }, 50_000)).toThrow(
      expect.objectContaining({ code: 'ERR_DOES_NOT_FIT' }),
    );
  });
});

describe('grid2d', () => {
  it('keeps each dimension within the limit and covers the count', () => {
    for (const n of [1, 65535, 65536, 1e6]) {
      const [x, y] = grid2d(n);
      expect(x).toBeLessThanOrEqual(65535);
      expect(x * y).toBeGreaterThanOrEqual(n);
    }
  });
});
