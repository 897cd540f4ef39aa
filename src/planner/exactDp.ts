// CSGO's exact DP (PAPERS.md section 1) over (devices used, last layer, last device), with identical devices merged.
//
// DP(S, j, d) = min over i < j, d' in S \ {d} of f(i+1..j on d after d' finished at DP(S \ {d}, i, d')),
// only where i+1..j fits d's memory; base DP({d}, j, d) = f(1..j on d, first). Answer min over S, d of DP(S, L, d).
// The paper's three slips are avoided here: the memory test is on i+1..j (Tables.minStart bounds s = i+1), the
// comparison is against DP(S, j, d) itself (`best` below, per j), and the back-pointer i is the predecessor's last
// layer.
// A device may get nothing: S ranges over every subset. f is nondecreasing in its predecessor's finish, so the
// earliest finish per state is all the DP needs to keep. With decode (decodeTokens > 0) the objective
// TTFT + D x tau is no longer a function of one number per state, so each state keeps the Pareto front of
// (finish, decode share) labels instead: both grow monotonically along the chain, so the front is exact too.
import { ShoalError } from '../errors.ts';
import type { Seg } from './costModel.ts';
import { deviceClasses, stateCounts, type DeviceClasses } from './deviceClasses.ts';
import type { Tables } from './tables.ts';

export interface DpResult {
  segs: Seg[];
  objectiveSec: number;
  /** Heuristic only, when nothing fits: how many layers (from the first) the best order could cover. */
  reach?: number;
}

/** Inner steps the DP would take (transitions x cut pairs); Infinity when the state space is too large to list. */
export function exactWork(T: Tables, cls: DeviceClasses = deviceClasses(T.p.devices)): number {
  if (cls.nStates > 4e6) return Infinity;
  const C = cls.members.length;
  const counts = new Int32Array(C);
  let work = 0;
  for (let S = 1; S < cls.nStates; S++) {
    stateCounts(cls, S, counts);
    let nonEmpty = 0;
    for (let c = 0; c < C; c++) if (counts[c] > 0) nonEmpty++;
    // last class c: predecessors are the non-empty classes of S minus one device of c
    for (let c = 0; c < C; c++) if (counts[c] > 0) work += counts[c] > 1 ? nonEmpty : nonEmpty - 1;
  }
  const factor = T.decodeTokens > 0 ? 8 : 1; // Pareto fronts cost a few labels per state
  return (work * factor * T.L * (T.L - 1)) / 2 + cls.nStates * C * T.L;
}

function infeasible(T: Tables): never {
  const need = T.p.layers.reduce((a, l) => a + l.paramBytes, 0);
  const have = T.p.devices.reduce((a, d) => a + d.memoryBytes, 0);
  throw new ShoalError(
    'ERR_INFEASIBLE_PLAN',
    `no plan fits: the ${T.L} layers need ${(need / 1e9).toFixed(2)} GB of parameters (plus activations / KV cache), ` +
      `the ${T.K} devices have ${(have / 1e9).toFixed(2)} GB in all, ` +
      "and no contiguous split fits every device's memory",
  );
}

/** Rebuild the chain from back-pointers; class members are handed out from the highest index down. */
function rebuild(
  cls: DeviceClasses,
  L: number,
  C: number,
  S: number,
  c: number,
  walk: (S: number, j: number, c: number) => { i: number; cp: number },
): Seg[] {
  const counts = new Int32Array(C);
  stateCounts(cls, S, counts);
  const segs: Seg[] = [];
  let j = L - 1;
  while (c >= 0) {
    const { i, cp } = walk(S, j, c);
    segs.push({ d: cls.members[c][counts[c] - 1], s: i + 1, e: j });
    counts[c]--;
    S -= cls.stride[c];
    j = i;
    c = cp;
  }
  return segs.reverse();
}

export function exactDp(T: Tables): DpResult {
  const cls = deviceClasses(T.p.devices);
  if (!Number.isFinite(cls.nStates) || cls.nStates > 4e6)
    throw new ShoalError(
      'ERR_BAD_SCENARIO',
      `scenario: ${T.K} devices is too many for the exact DP; use the heuristic`,
    );
  return T.decodeTokens > 0 ? paretoDp(T, cls) : scalarDp(T, cls);
}

/**
 * Visit the DP's states in an order where every smaller subset comes first: each multiset S of devices (by class),
 * each class c present in S, with d its representative device and Sp the state S without one device of class c.
 */
function forEachStep(cls: DeviceClasses, visit: (S: number, c: number, d: number, Sp: number) => void): void {
  const C = cls.members.length;
  const counts = new Int32Array(C);
  for (let S = 1; S < cls.nStates; S++) {
    stateCounts(cls, S, counts);
    for (let c = 0; c < C; c++) if (counts[c] > 0) visit(S, c, cls.members[c][0], S - cls.stride[c]);
  }
}

function scalarDp(T: Tables, cls: DeviceClasses): DpResult {
  const { L, K, kappa, A, B, hop, minStart, maxEnd } = T;
  const C = cls.members.length;
  const N = cls.nStates;
  const rep = cls.members.map((m) => m[0]);
  const size = N * L * C;
  const dp = new Float64Array(size).fill(Infinity);
  const bpI = new Int32Array(size).fill(-1);
  const bpC = new Int32Array(size).fill(-1);
  forEachStep(cls, (S, c, d, Sp) => {
    const out = S * L * C + c;
    if (Sp === 0) {
      const end = maxEnd[d * L];
      for (let j = 0; j <= end; j++) dp[out + j * C] = T.finish(d, -1, 0, j, 0);
      return;
    }
    for (let j = 1; j < L; j++) {
      let best = Infinity;
      let bi = -1;
      let bc = -1;
      const sMin = Math.max(1, minStart[d * L + j]);
      for (let s = sMin; s <= j; s++) {
        const ti = (d * L + s) * L + j;
        const a = A[ti];
        const b = B[ti];
        const prev = (Sp * L + s - 1) * C;
        for (let cp = 0; cp < C; cp++) {
          const v = dp[prev + cp];
          if (v === Infinity) continue;
          const h = hop[(rep[cp] * K + d) * L + s];
          const val = Math.max(v + h + a, b + kappa * h);
          if (val < best) {
            best = val;
            bi = s - 1;
            bc = cp;
          }
        }
      }
      if (best < Infinity) {
        dp[out + j * C] = best;
        bpI[out + j * C] = bi;
        bpC[out + j * C] = bc;
      }
    }
  });
  let best = Infinity;
  let bS = -1;
  let bc = -1;
  for (let S = 1; S < N; S++) {
    for (let c = 0; c < C; c++) {
      const v = dp[(S * L + L - 1) * C + c];
      if (v < best) {
        best = v;
        bS = S;
        bc = c;
      }
    }
  }
  if (best === Infinity) infeasible(T);
  const segs = rebuild(cls, L, C, bS, bc, (S, j, c) => ({ i: bpI[(S * L + j) * C + c], cp: bpC[(S * L + j) * C + c] }));
  return { segs, objectiveSec: best };
}

interface Label {
  f: number; // prefill finish
  g: number; // accumulated decode share
  i: number; // predecessor's last layer (-1: first segment)
  cp: number; // predecessor's class (-1: none)
  k: number; // index of the predecessor's label in its front
}

/** Insert a label into a Pareto front on (f, g), both minimised; fronts stay small in practice. */
function insert(front: Label[], lab: Label): void {
  for (const o of front) if (o.f <= lab.f && o.g <= lab.g) return;
  let w = 0;
  for (let r = 0; r < front.length; r++) if (!(lab.f <= front[r].f && lab.g <= front[r].g)) front[w++] = front[r];
  front.length = w;
  front.push(lab);
}

function paretoDp(T: Tables, cls: DeviceClasses): DpResult {
  const { L, maxEnd, minStart } = T;
  const D = T.decodeTokens;
  const C = cls.members.length;
  const N = cls.nStates;
  const rep = cls.members.map((m) => m[0]);
  const fronts: (Label[] | undefined)[] = new Array<Label[] | undefined>(N * L * C);
  forEachStep(cls, (S, c, d, Sp) => {
    if (Sp === 0) {
      for (let j = 0; j <= maxEnd[d * L]; j++)
        fronts[(S * L + j) * C + c] = [{ f: T.finish(d, -1, 0, j, 0), g: T.decode(d, -1, 0, j), i: -1, cp: -1, k: -1 }];
      return;
    }
    for (let j = 1; j < L; j++) {
      const front: Label[] = [];
      for (let s = Math.max(1, minStart[d * L + j]); s <= j; s++) {
        for (let cp = 0; cp < C; cp++) {
          const prev = fronts[(Sp * L + s - 1) * C + cp];
          if (!prev) continue;
          const dec = T.decode(d, rep[cp], s, j);
          for (let k = 0; k < prev.length; k++)
            insert(front, { f: T.finish(d, rep[cp], s, j, prev[k].f), g: prev[k].g + dec, i: s - 1, cp, k });
        }
      }
      if (front.length) fronts[(S * L + j) * C + c] = front;
    }
  });
  let best = Infinity;
  let bS = -1;
  let bc = -1;
  let bk = -1;
  for (let S = 1; S < N; S++) {
    for (let c = 0; c < C; c++) {
      const front = fronts[(S * L + L - 1) * C + c];
      if (!front) continue;
      front.forEach((lab, k) => {
        const v = lab.f + D * lab.g;
        if (v < best) [best, bS, bc, bk] = [v, S, c, k];
      });
    }
  }
  if (best === Infinity) infeasible(T);
  let k = bk;
  const segs = rebuild(cls, L, C, bS, bc, (S, j, c) => {
    const lab = (fronts[(S * L + j) * C + c] as Label[])[k];
    k = lab.k;
    return { i: lab.i, cp: lab.cp };
  });
  return { segs, objectiveSec: best };
}
