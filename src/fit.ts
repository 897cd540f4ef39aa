// Least-squares lines for cost models measured online (a pass's time in rows, a round trip in positions).

/** Means and centred sums of (x, y) points (non-empty), for a least-squares line y = a + b x. */
export function moments(points: [number, number][]): { mx: number; my: number; sxx: number; sxy: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxx = 0, sxy = 0;
  for (const [x, y] of points) { sxx += (x - mx) ** 2; sxy += (x - mx) * (y - my); }
  return { mx, my, sxx, sxy };
}

/**
 * y = a + b x over the last `window` points, neither part negative (a pass has a fixed cost and a cost per row);
 * null before two distinct x were seen.
 */
export class CostLine {
  private readonly points: [number, number][] = [];
  constructor(private readonly window = 48) {}

  observe(x: number, y: number): void {
    if (!(Number.isFinite(x) && Number.isFinite(y) && y >= 0)) return;
    this.points.push([x, y]);
    if (this.points.length > this.window) this.points.shift();
  }

  line(): { a: number; b: number } | null {
    if (this.points.length < 2) return null;
    const { mx, my, sxx, sxy } = moments(this.points);
    if (sxx === 0) return null;
    const b = Math.min(my / Math.max(mx, 1e-9), Math.max(0, sxy / sxx));
    return { a: Math.max(0, my - b * mx), b };
  }
}
