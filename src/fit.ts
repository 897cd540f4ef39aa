// Least-squares lines for cost models measured online (a verification pass's compute, a round trip in positions).

/** Means and centred sums of (x, y) points (non-empty), for a least-squares line y = a + b x. */
export function moments(points: [number, number][]): { mx: number; my: number; sxx: number; sxy: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxx = 0,
    sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  return { mx, my, sxx, sxy };
}
