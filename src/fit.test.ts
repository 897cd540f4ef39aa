// The least-squares moments behind the speculative controller's cost lines.
import { describe, expect, it } from 'vitest';
import { moments } from './fit.ts';

describe('moments', () => {
  it('gives the slope and intercept of points on a line', () => {
    const { mx, my, sxx, sxy } = moments([
      [1, 4.5],
      [2, 5],
      [5, 6.5],
      [13, 10.5],
    ]);
    const b = sxy / sxx;
    expect(b).toBeCloseTo(0.5);
    expect(my - b * mx).toBeCloseTo(4);
  });
});
