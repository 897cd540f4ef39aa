// Anytime heuristic past the exact DP's reach: device orders + a 1-D DP over cut points + local search on the order.
//
// For a fixed order of devices the best plan that uses them in that relative order (any subset, any cuts) is a
// small DP: best(n, j) = earliest finish with device o_n ending at layer j, from any earlier o_m (devices may be
// skipped). O(N^2 L^2) per order. We start from weak-to-strong and strong-to-weak orders by several keys (in the
// cold-start setting the strong, fast-loading device tends to belong at the end, where its load hides behind
// everyone else's compute), keep the best, then swap and move devices while it improves and time is left.
import { ShoalError } from '../errors.ts';
import type { Seg } from './costModel.ts';
import { deviceClasses } from './deviceClasses.ts';
import type { DpResult } from './exactDp.ts';
import type { Tables } from './tables.ts';

interface Label {
  f: number;
  g: number;
  m: number; // predecessor position in the order (-1: first)
  i: number; // predecessor's last layer
  k: number; // predecessor label index
}

/** Best plan for one device order (subsets and cuts free, order fixed). Objective Infinity if nothing fits. */
export function orderDp(T: Tables, order: number[]): DpResult {
  return T.decodeTokens > 0 ? orderDpPareto(T, order) : orderDpScalar(T, order);
}

function orderDpScalar(T: Tables, order: number[]): DpResult {
  const { L, K, A, B, hop, kappa, minStart, maxEnd } = T;
  const N = order.length;
  const best = new Float64Array(N * L).fill(Infinity);
  const bpM = new Int32Array(N * L).fill(-1);
  const bpI = new Int32Array(N * L).fill(-1);
  for (let n = 0; n < N; n++) {
    const d = order[n];
    for (let j = 0; j <= maxEnd[d * L]; j++) best[n * L + j] = T.finish(d, -1, 0, j, 0);
    for (let j = 1; j < L; j++) {
      let v = Infinity;
      let bm = -1;
      let bi = -1;
      for (let s = Math.max(1, minStart[d * L + j]); s <= j; s++) {
        const ti = (d * L + s) * L + j;
        const a = A[ti];
        const b = B[ti];
        for (let m = 0; m < n; m++) {
          const x = best[m * L + s - 1];
          if (x === Infinity) continue;
          const h = hop[(order[m] * K + d) * L + s];
          const val = Math.max(x + h + a, b + kappa * h);
          if (val < v) [v, bm, bi] = [val, m, s - 1];
        }
      }
      // a device that starts the chain at layer 1 was set above; keep whichever is earlier
      if (v < best[n * L + j]) {
        best[n * L + j] = v;
        bpM[n * L + j] = bm;
        bpI[n * L + j] = bi;
      }
    }
  }
  let objective = Infinity;
  let bn = -1;
  for (let n = 0; n < N; n++) if (best[n * L + L - 1] < objective) [objective, bn] = [best[n * L + L - 1], n];
  if (bn < 0) return { segs: [], objectiveSec: Infinity };
  const segs: Seg[] = [];
  let j = L - 1;
  let n = bn;
  while (n >= 0) {
    const m = bpM[n * L + j];
    const i = bpI[n * L + j];
    segs.push({ d: order[n], s: m < 0 ? 0 : i + 1, e: j });
    j = i;
    n = m;
  }
  return { segs: segs.reverse(), objectiveSec: objective };
}

function orderDpPareto(T: Tables, order: number[]): DpResult {
  const { L, minStart, maxEnd } = T;
  const D = T.decodeTokens;
  const N = order.length;
  const fronts: Label[][] = Array.from({ length: N * L }, () => []);
  const insert = (front: Label[], lab: Label): void => {
    for (const o of front) if (o.f <= lab.f && o.g <= lab.g) return;
    let w = 0;
    for (let r = 0; r < front.length; r++) if (!(lab.f <= front[r].f && lab.g <= front[r].g)) front[w++] = front[r];
    front.length = w;
    front.push(lab);
  };
  for (let n = 0; n < N; n++) {
    const d = order[n];
    for (let j = 0; j <= maxEnd[d * L]; j++) insert(fronts[n * L + j], { f: T.finish(d, -1, 0, j, 0), g: T.decode(d, -1, 0, j), m: -1, i: -1, k: -1 });
    for (let j = 1; j < L; j++) {
      for (let s = Math.max(1, minStart[d * L + j]); s <= j; s++) {
        for (let m = 0; m < n; m++) {
          const prev = fronts[m * L + s - 1];
          if (prev.length === 0) continue;
          const dec = T.decode(d, order[m], s, j);
          for (let k = 0; k < prev.length; k++) insert(fronts[n * L + j], { f: T.finish(d, order[m], s, j, prev[k].f), g: prev[k].g + dec, m, i: s - 1, k });
        }
      }
    }
  }
  let objective = Infinity;
  let bn = -1;
  let bk = -1;
  for (let n = 0; n < N; n++) fronts[n * L + L - 1].forEach((lab, k) => {
    if (lab.f + D * lab.g < objective) [objective, bn, bk] = [lab.f + D * lab.g, n, k];
  });
  if (bn < 0) return { segs: [], objectiveSec: Infinity };
  const segs: Seg[] = [];
  let j = L - 1;
  let n = bn;
  let k = bk;
  while (n >= 0) {
    const lab = fronts[n * L + j][k];
    segs.push({ d: order[n], s: lab.m < 0 ? 0 : lab.i + 1, e: j });
    [j, n, k] = [lab.i, lab.m, lab.k];
  }
  return { segs: segs.reverse(), objectiveSec: objective };
}

export interface HeuristicOptions {
  budgetMs: number;
  /** Clock, injectable so tests can make the search deterministic. */
  now?: () => number;
}

export function heuristic(T: Tables, opts: HeuristicOptions): DpResult {
  const now = opts.now ?? (() => performance.now());
  const deadline = now() + opts.budgetMs;
  const devs = T.p.devices;
  const K = devs.length;
  const idx = Array.from({ length: K }, (_, i) => i);
  const maxC = Math.max(...devs.map((d) => d.flops));
  const maxR = Math.max(...devs.map((d) => d.loadBytesPerSec));
  const keys: ((d: number) => number)[] = [
    (d) => devs[d].flops,
    (d) => devs[d].loadBytesPerSec,
    (d) => 2 / (maxC / devs[d].flops + maxR / devs[d].loadBytesPerSec),
    (d) => devs[d].memoryBytes,
    (d) => Math.min(devs[d].uplinkBytesPerSec, devs[d].downlinkBytesPerSec),
  ];
  let best: DpResult = { segs: [], objectiveSec: Infinity };
  let bestOrder = idx;
  const tryOrder = (order: number[]): boolean => {
    const r = orderDp(T, order);
    if (r.objectiveSec < best.objectiveSec - 1e-12 * Math.abs(best.objectiveSec)) {
      best = r;
      bestOrder = order;
      return true;
    }
    return false;
  };
  for (const key of keys) {
    const weakToStrong = [...idx].sort((a, b) => key(a) - key(b) || a - b);
    tryOrder(weakToStrong);
    tryOrder([...weakToStrong].reverse());
  }
  if (best.objectiveSec === Infinity) {
    throw new ShoalError('ERR_INFEASIBLE_PLAN', `no plan fits: no contiguous split of the ${T.L} layers fits the memory of the ${K} devices`);
  }
  // Local search on the order: identical devices are interchangeable, so only moves between classes count.
  const cls = deviceClasses(devs);
  const classOf = new Int32Array(K);
  cls.members.forEach((m, c) => m.forEach((d) => (classOf[d] = c)));
  let improved = true;
  while (improved && now() < deadline) {
    improved = false;
    const order = bestOrder;
    // moves that touch a used device first: unused devices only matter when moved into the chain's span
    for (let a = 0; a < K && !improved && now() < deadline; a++) {
      for (let b = 0; b < K && !improved && now() < deadline; b++) {
        if (a === b || classOf[order[a]] === classOf[order[b]]) continue;
        if (a < b) {
          const swapped = [...order];
          [swapped[a], swapped[b]] = [swapped[b], swapped[a]];
          if (tryOrder(swapped)) improved = true;
        }
        if (!improved && Math.abs(a - b) > 1) {
          const moved = [...order];
          const [x] = moved.splice(a, 1);
          moved.splice(b, 0, x);
          if (tryOrder(moved)) improved = true;
        }
      }
    }
  }
  return best;
}
