// Fits one side's latency parameters to timed turns (warm-up runs of the real engines): non-negative least
// squares of time to first token on [1, prefilled tokens, their position sum] and of decode time on
// [decoded tokens, their position sum], so the model the calibration uses is the one the engines show.
import { ShoalError } from '../errors.ts';
import { rawTerms } from './predictor.ts';
import type { SideParams } from './predictor.ts';

export interface TimedTurn {
  contextTokens: number;
  /** Leading context tokens the side had cached. */
  cachedTokens: number;
  outTokens: number;
  ttftSec: number;
  /** First token to last. */
  decodeSec: number;
}

/** Least squares y ~ X w with w >= 0, by trying every subset of columns (a handful here). */
function nnls(rows: number[][], y: number[]): number[] {
  const k = rows[0].length;
  let best: { w: number[]; err: number } | null = null;
  for (let mask = 1; mask < 1 << k; mask++) {
    const cols = [...Array(k).keys()].filter((j) => mask & (1 << j));
    const w = solve(
      rows.map((r) => cols.map((j) => r[j])),
      y,
    );
    if (!w || w.some((x) => x < 0)) continue;
    const full = Array<number>(k).fill(0);
    cols.forEach((j, i) => (full[j] = w[i]));
    const err = rows.reduce((s, r, i) => s + (r.reduce((t, x, j) => t + x * full[j], 0) - y[i]) ** 2, 0);
    if (!best || err < best.err) best = { w: full, err };
  }
  return best?.w ?? Array<number>(k).fill(0);
}

/** Normal equations by Gaussian elimination; null when singular. */
function solve(rows: number[][], y: number[]): number[] | null {
  const k = rows[0].length;
  const a = Array.from({ length: k }, (_, i) => [
    ...Array.from({ length: k }, (_, j) => rows.reduce((s, r) => s + r[i] * r[j], 0)),
    rows.reduce((s, r, n) => s + r[i] * y[n], 0),
  ]);
  for (let c = 0; c < k; c++) {
    let piv = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r][c]) > Math.abs(a[piv][c])) piv = r;
    if (Math.abs(a[piv][c]) < 1e-12 * Math.max(1, Math.abs(a[c][c]))) return null;
    [a[c], a[piv]] = [a[piv], a[c]];
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let j = c; j <= k; j++) a[r][j] -= f * a[c][j];
    }
  }
  return a.map((row, i) => row[k] / row[i]);
}

export function fitSideParams(turns: TimedTurn[]): SideParams {
  if (turns.length < 3)
    throw new ShoalError('ERR_BAD_ARGS', `fitting a side needs at least 3 timed turns, got ${turns.length}`);
  // the features are the raw terms of unit parameters, so the fit and the predictor cannot disagree on shapes
  const unit = (p: Partial<SideParams>) => ({ fixedSec: 0, prefillSecPerToken: 0, decodeSecPerToken: 0, ...p });
  const shape = (t: TimedTurn) => ({
    contextTokens: t.contextTokens,
    cachedTokens: Math.min(t.cachedTokens, t.contextTokens - 1),
    historyTokens: 0,
    outTokens: t.outTokens,
  });
  const first = nnls(
    turns.map((t) => [
      1,
      rawTerms(unit({ prefillSecPerToken: 1 }), shape(t)).prefillSec,
      rawTerms(unit({ prefillSecPerPosition: 1 }), shape(t)).prefillSec,
    ]),
    turns.map((t) => t.ttftSec),
  );
  const dec = turns.filter((t) => t.outTokens > 1);
  const decode = dec.length
    ? nnls(
        dec.map((t) => [
          rawTerms(unit({ decodeSecPerToken: 1 }), shape(t)).decodeSec,
          rawTerms(unit({ decodeSecPerPosition: 1 }), shape(t)).decodeSec,
        ]),
        dec.map((t) => t.decodeSec),
      )
    : [0, 0];
  return {
    fixedSec: first[0],
    prefillSecPerToken: first[1],
    prefillSecPerPosition: first[2],
    decodeSecPerToken: decode[0],
    decodeSecPerPosition: decode[1],
  };
}
