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
import { exactDp, type DpResult } from './exactDp.ts';
import { Tables } from './tables.ts';
import { seededRandom as rng } from '../random.ts';

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
  if (bn < 0) {
    let reach = 0;
    for (let k = 0; k < N * L; k++) if (best[k] < Infinity) reach = Math.max(reach, (k % L) + 1);
    return { segs: [], objectiveSec: Infinity, reach };
  }
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
    for (let j = 0; j <= maxEnd[d * L]; j++)
      insert(fronts[n * L + j], { f: T.finish(d, -1, 0, j, 0), g: T.decode(d, -1, 0, j), m: -1, i: -1, k: -1 });
    for (let j = 1; j < L; j++) {
      for (let s = Math.max(1, minStart[d * L + j]); s <= j; s++) {
        for (let m = 0; m < n; m++) {
          const prev = fronts[m * L + s - 1];
          if (prev.length === 0) continue;
          const dec = T.decode(d, order[m], s, j);
          for (let k = 0; k < prev.length; k++)
            insert(fronts[n * L + j], {
              f: T.finish(d, order[m], s, j, prev[k].f),
              g: prev[k].g + dec,
              m,
              i: s - 1,
              k,
            });
        }
      }
    }
  }
  let objective = Infinity;
  let bn = -1;
  let bk = -1;
  for (let n = 0; n < N; n++)
    fronts[n * L + L - 1].forEach((lab, k) => {
      if (lab.f + D * lab.g < objective) [objective, bn, bk] = [lab.f + D * lab.g, n, k];
    });
  if (bn < 0) {
    let reach = 0;
    fronts.forEach((f, x) => {
      if (f.length) reach = Math.max(reach, (x % L) + 1);
    });
    return { segs: [], objectiveSec: Infinity, reach };
  }
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
  /** Kicks without improvement before the search stops on its own (default 2K + 20). */
  maxStaleKicks?: number;
  seed?: number;
}

/** Small seeded PRNG: the search is reproducible for a given scenario and budget. */
export { rng };

/** Devices the exact DP is run on to seed the search when the fleet is too large for it. */
const SEED_SUBSET = 8;

/**
 * Lexicographic: first how many layers the order can cover at all (so an infeasible start climbs towards a
 * feasible one), then time; a strict improvement beyond rounding noise, so the search cannot cycle on ties.
 */
function betterResult(a: DpResult, b: DpResult, L: number): boolean {
  const cover = (r: DpResult) => (r.objectiveSec < Infinity ? L : (r.reach ?? 0));
  return (
    cover(a) > cover(b) ||
    (cover(a) === cover(b) &&
      a.objectiveSec < Infinity &&
      (b.objectiveSec === Infinity || a.objectiveSec < b.objectiveSec * (1 - 1e-12)))
  );
}

/**
 * Device orders to start the search from: every ranking key weak to strong and strong to weak, the exact DP's
 * chain on the strongest few (while at least half the budget is left), and the greedy reach order.
 */
function startOrders(T: Tables, timeLeftMs: () => number, budgetMs: number): number[][] {
  const devs = T.p.devices;
  const K = devs.length;
  const L = T.L;
  const idx = Array.from({ length: K }, (_, i) => i);
  const maxC = Math.max(...devs.map((d) => d.flops));
  const maxR = Math.max(...devs.map((d) => d.loadBytesPerSec));
  const alone = idx.map((d) => (T.fits(d, 0, L - 1) ? T.finish(d, -1, 0, L - 1, 0) : T.B[d * L * L + L - 1] * 2));
  const keys: ((d: number) => number)[] = [
    (d) => devs[d].flops,
    (d) => devs[d].loadBytesPerSec,
    (d) => 2 / (maxC / devs[d].flops + maxR / devs[d].loadBytesPerSec),
    (d) => devs[d].memoryBytes,
    (d) => Math.min(devs[d].uplinkBytesPerSec, devs[d].downlinkBytesPerSec),
    (d) => -alone[d],
  ];
  const starts: number[][] = [];
  for (const key of keys) {
    const weakToStrong = [...idx].sort((a, b) => key(a) - key(b) || a - b);
    starts.push(weakToStrong, [...weakToStrong].reverse());
  }
  // Past the exact limit, the exact DP on the strongest few devices gives a good chain to grow from: its order,
  // with every other device placed in front (weak to strong), where the 1-D DP may or may not use them.
  if (K > SEED_SUBSET) {
    for (const key of [(d: number) => -alone[d], keys[2]]) {
      if (timeLeftMs() < budgetMs / 2) break; // leave at least half the budget to the search itself
      const top = [...idx].sort((a, b) => key(b) - key(a) || a - b).slice(0, SEED_SUBSET);
      try {
        const sub = exactDp(subTables(T, top));
        const chain = sub.segs.map((g) => top[g.d]);
        const rest = idx.filter((d) => !chain.includes(d)).sort((a, b) => keys[2](a) - keys[2](b));
        starts.push([...rest, ...chain]);
      } catch {
        // the few strongest cannot hold the model alone: the other starts still can
      }
    }
  }
  starts.push(greedyReach(T));
  return starts;
}

/**
 * Local search on the order (first improvement over swaps and moves) until no move helps or time is up;
 * identical devices (same class) are interchangeable, so swapping them is skipped.
 */
function localSearch(
  T: Tables,
  classOf: Int32Array,
  inTime: () => boolean,
  order: number[],
  value: DpResult,
): [number[], DpResult] {
  const K = order.length;
  let improved = true;
  while (improved && inTime()) {
    improved = false;
    for (let a = 0; a < K && !improved && inTime(); a++) {
      for (let b = 0; b < K && !improved && inTime(); b++) {
        if (a === b || classOf[order[a]] === classOf[order[b]]) continue;
        const cands: number[][] = [];
        if (a < b) {
          const swapped = [...order];
          [swapped[a], swapped[b]] = [swapped[b], swapped[a]];
          cands.push(swapped);
        }
        if (Math.abs(a - b) > 1) {
          const moved = [...order];
          const [x] = moved.splice(a, 1);
          moved.splice(b, 0, x);
          cands.push(moved);
        }
        for (const cand of cands) {
          const r = orderDp(T, cand);
          if (betterResult(r, value, T.L)) {
            [order, value, improved] = [cand, r, true];
            break;
          }
        }
      }
    }
  }
  return [order, value];
}

export function heuristic(T: Tables, opts: HeuristicOptions): DpResult {
  const now = opts.now ?? (() => performance.now());
  const deadline = now() + opts.budgetMs;
  const inTime = () => now() < deadline;
  const random = rng(opts.seed ?? 1);
  const K = T.p.devices.length;
  let best: DpResult = { segs: [], objectiveSec: Infinity, reach: -1 };
  let bestOrder = Array.from({ length: K }, (_, i) => i);
  for (const order of startOrders(T, () => deadline - now(), opts.budgetMs)) {
    const r = orderDp(T, order);
    if (betterResult(r, best, T.L)) [best, bestOrder] = [r, order];
  }

  const cls = deviceClasses(T.p.devices);
  const classOf = new Int32Array(K);
  cls.members.forEach((m, c) => m.forEach((d) => (classOf[d] = c)));
  [bestOrder, best] = localSearch(T, classOf, inTime, bestOrder, best);
  // Iterated local search: kick the best order with a few random swaps and search again, until the kicks stop
  // paying off or time runs out (anytime: `best` is always a valid plan).
  const maxStale = opts.maxStaleKicks ?? 10 * K + 50;
  for (let stale = 0; stale < maxStale && inTime() && K > 2; stale++) {
    const kicked = [...bestOrder];
    for (let k = 0; k < 3; k++) {
      const a = Math.floor(random() * K);
      const b = Math.floor(random() * K);
      [kicked[a], kicked[b]] = [kicked[b], kicked[a]];
    }
    const [order, value] = localSearch(T, classOf, inTime, kicked, orderDp(T, kicked));
    if (betterResult(value, best, T.L)) {
      [bestOrder, best] = [order, value];
      stale = -1;
    }
  }
  if (best.objectiveSec === Infinity) {
    throw new ShoalError(
      'ERR_INFEASIBLE_PLAN',
      `no plan fits: the heuristic found no contiguous split of the ${T.L} layers that fits the memory ` +
        `of the ${K} devices (best reach: layer ${best.reach ?? 0})`,
    );
  }
  return best;
}

/** Tables restricted to a subset of devices (for seeding); shares the cost model, re-indexes devices. */
function subTables(T: Tables, devices: number[]): Tables {
  return new Tables({ ...T.p, devices: devices.map((d) => T.p.devices[d]) });
}

/**
 * A start that is feasible whenever memory, not time, is the hard part: from the first uncovered layer, take the unused
 * device that reaches furthest (ties: the one that would finish sooner alone), then the remaining devices after it.
 */
function greedyReach(T: Tables): number[] {
  const { K, L } = T;
  const used = new Array<boolean>(K).fill(false);
  const chain: number[] = [];
  let s = 0;
  while (s < L) {
    let pick = -1;
    for (let d = 0; d < K; d++) {
      if (used[d]) continue;
      if (
        pick < 0 ||
        T.maxEnd[d * L + s] > T.maxEnd[pick * L + s] ||
        (T.maxEnd[d * L + s] === T.maxEnd[pick * L + s] && T.p.devices[d].flops > T.p.devices[pick].flops)
      )
        pick = d;
    }
    if (pick < 0 || T.maxEnd[pick * L + s] < s) break;
    used[pick] = true;
    chain.push(pick);
    s = T.maxEnd[pick * L + s] + 1;
  }
  return [...chain, ...Array.from({ length: K }, (_, d) => d).filter((d) => !used[d])];
}
