// The two cost models, segment by segment: "csgo" is PAPERS.md section 1 eq. (17)-(22) verbatim; "shoal" is ours.
//
// A plan is a chain of segments n = 1..N: device k_n runs layers s_n..e_n (here 0-based, inclusive).
// Both models give the finish time of a segment as f(segment, device, predecessor device, x), where x is the
// predecessor's finish time (0 for the first segment), and f is nondecreasing in x. That monotonicity is what
// makes the DP over (devices used, last layer, last device) exact: keeping the earliest finish per state loses
// nothing, because a later predecessor finish can never give an earlier finish downstream.
//
// "csgo" (the paper, every device starts loading at t = 0, in parallel):
//   t_load(n) = sum_l P_l / r_k,  t_comm(n) = A_{s_n - 1} / min(bu_{k_{n-1}}, bd_{k_n}) (0 for n = 1),
//   t_comp(n) = sum_l W_l / c_k,  t_finish(n) = max(t_load(n), t_finish(n-1)) + t_comm(n) + t_comp(n),
//   memory: max_l A_l + sum_l P_l <= m_k,  objective T = t_finish(N).
//
// "shoal" (ours; every device also starts loading at t = 0, the moment the plan is known):
//   Items of a segment, in load order: the embedding (first segment), layers s..e, the final norm + LM head
//   (last segment; with tied embeddings on a single device only the norm is new). For item i with bytes B_i
//   and FLOPs W_i on device k (r = load, u = GPU upload, c = FLOP/s):
//     loaded   L_i = L_{i-1} + B_i / r                           (one reader, in the order the layers run)
//     uploaded U_i = max(L_i, U_{i-1}) + B_i / u                 (upload pipelined behind the load; u absent = 0 s)
//     computed C_i = max(U_i, C_{i-1}) + W_i / c,  C_{-1} = x'   (per-layer streaming: a layer runs once it and
//                                                                 its input are ready, not the whole segment)
//   x' = x + hop: hop = lat_{k'} + lat_k + A_{s-1} / min(bu_{k'}, bd_k) between stages, and for the first
//   segment x = 0, hop = lat_k + 4 t / bd_k (token ids in). The last segment adds out = lat_k + O / bu_k (O: a
//   token id, or the last position's logits with returnLogits). TTFT = finish of the last segment.
//   Closed form used by the DP: C_last = max(x' + sum_i W_i / c, H) with H = max_i (U_i + sum_{m >= i} W_m / c).
//   Decode (one sequence, so stages take turns): per-token latency
//     tau = sum_n [ sum_l w_l / c_{k_n} + hop_n ] + return,  w_l = decode FLOPs of layer l (+ head, + embedding),
//     hop_n = lat + lat + a_{s_n - 1} / min(bu, bd) with a = one token's activation bytes,
//     return = lat_last + 4 / bu_last + lat_first + 4 / bd_first  (the sampled id back to the first stage;
//              store-and-forward through the access point, which keeps it a sum of per-device terms).
//   Objective = TTFT + decodeTokens x tau. Memory of a segment:
//     sum_l P_l + context x sum_l KV_l + max_l workspace_l + embedding (first) + head + logits (last) <= m_k.
//   Not modelled: compute and upload contending for the GPU, decode being memory-bandwidth bound, a device's
//   link carrying two transfers at once (a chain never needs that).
import { TOKEN_ID_BYTES, type Problem } from './scenario.ts';
import { unitLoadSec, type DeviceProfile } from './types.ts';

/** Internal segment: device index d runs layers s..e (0-based, inclusive). */
export interface Seg {
  d: number;
  s: number;
  e: number;
}

export interface PlanCost {
  /** Finish of the last segment's prefill: the paper's T ("csgo") or TTFT ("shoal"). */
  ttftSec: number;
  /** "shoal": steady per-token decode latency (0 for "csgo"). */
  perTokenSec: number;
  /** What the planner minimises: ttft + decodeTokens x perToken. */
  objectiveSec: number;
}

const lat = (p: Problem, d: number): number => p.devices[d].latencySec ?? 0;

/** Head bytes a segment must load: with tied embeddings on a device that already holds the matrix, only the norm. */
export function headLoadBytes(p: Problem, s: number): number {
  if (p.tiedEmbeddings && s === 0) return Math.max(0, p.head.paramBytes - p.embedding.paramBytes);
  return p.head.paramBytes;
}

/** Memory a segment needs on its device (see the header for both models). */
export function segmentMemoryBytes(p: Problem, s: number, e: number): number {
  const L = p.layers.length;
  let params = 0;
  let maxAct = 0;
  let kv = 0;
  let work = 0;
  for (let l = s; l <= e; l++) {
    const layer = p.layers[l];
    params += layer.paramBytes;
    maxAct = Math.max(maxAct, layer.activationBytes);
    kv += layer.kvBytesPerToken;
    work = Math.max(work, layer.workspaceBytes);
  }
  if (p.costModel === 'csgo') return maxAct + params;
  if (s === 0) params += p.embedding.paramBytes;
  if (e === L - 1) {
    params += headLoadBytes(p, s);
    work = Math.max(work, p.head.workspaceBytes);
  }
  return params + p.contextTokens * kv + work;
}

export function segmentFits(p: Problem, seg: Seg): boolean {
  return segmentMemoryBytes(p, seg.s, seg.e) <= p.devices[seg.d].memoryBytes;
}

/** Time for the input of a segment starting at layer s to reach device d from predecessor dp (-1: first segment). */
export function hopSec(p: Problem, dp: number, d: number, s: number): number {
  const dev = p.devices[d];
  if (p.costModel === 'csgo') {
    if (dp < 0) return 0;
    return p.layers[s - 1].activationBytes / Math.min(p.devices[dp].uplinkBytesPerSec, dev.downlinkBytesPerSec);
  }
  if (dp < 0) return lat(p, d) + p.tokenInBytes / dev.downlinkBytesPerSec;
  return (
    lat(p, dp) +
    lat(p, d) +
    p.layers[s - 1].activationBytes / Math.min(p.devices[dp].uplinkBytesPerSec, dev.downlinkBytesPerSec)
  );
}

/** "shoal": the last segment's result back out (token id or logits). */
export function outSec(p: Problem, d: number): number {
  return p.costModel === 'csgo' ? 0 : lat(p, d) + p.tokenOutBytes / p.devices[d].uplinkBytesPerSec;
}

/** One schedulable item of a segment ("shoal" streams these one by one). */
export interface SegItem {
  bytes: number;
  flops: number;
  layer?: number; // 0-based decoder layer; absent for the embedding and the head
  label: string;
}

/** Seconds a device takes to bring in one item (see DeviceProfile.unitBytesPerSec). */
export function itemLoadSec(dev: DeviceProfile, it: SegItem): number {
  return unitLoadSec(dev, it.layer ?? (it.label === 'embedding' ? 'embedding' : 'head'), it.bytes);
}

export function segmentItems(p: Problem, s: number, e: number): SegItem[] {
  const items: SegItem[] = [];
  const shoal = p.costModel === 'shoal';
  if (shoal && s === 0 && (p.embedding.paramBytes > 0 || p.embedding.flops > 0))
    items.push({ bytes: p.embedding.paramBytes, flops: p.embedding.flops, label: 'embedding' });
  for (let l = s; l <= e; l++)
    items.push({ bytes: p.layers[l].paramBytes, flops: p.layers[l].flops, layer: l, label: `layer ${l + 1}` });
  if (shoal && e === p.layers.length - 1 && (headLoadBytes(p, s) > 0 || p.head.flops > 0))
    items.push({ bytes: headLoadBytes(p, s), flops: p.head.flops, label: 'head' });
  return items;
}

/**
 * Finish time of a segment's prefill given its predecessor's finish x (reference form, item by item).
 * Nondecreasing in x for both models: every step is a max or a sum with x on one side.
 */
export function segmentFinishSec(p: Problem, seg: Seg, dp: number, x: number): number {
  const dev = p.devices[seg.d];
  const items = segmentItems(p, seg.s, seg.e);
  const arrival = x + hopSec(p, dp, seg.d, seg.s);
  if (p.costModel === 'csgo') {
    let load = 0;
    let comp = 0;
    for (const it of items) {
      load += itemLoadSec(dev, it);
      comp += it.flops / dev.flops;
    }
    return Math.max(load, x) + (arrival - x) + comp;
  }
  let loaded = 0;
  let uploaded = 0;
  let computed = arrival;
  for (const it of items) {
    loaded += itemLoadSec(dev, it);
    uploaded = Math.max(loaded, uploaded) + (dev.uploadBytesPerSec ? it.bytes / dev.uploadBytesPerSec : 0);
    computed = Math.max(uploaded, computed) + it.flops / dev.flops;
  }
  return seg.e === p.layers.length - 1 ? computed + outSec(p, seg.d) : computed;
}

/** "shoal": this segment's share of one decode step's latency (0 for "csgo"). */
export function segmentDecodeSec(p: Problem, seg: Seg, dp: number): number {
  if (p.costModel === 'csgo') return 0;
  const dev = p.devices[seg.d];
  let flops = 0;
  for (let l = seg.s; l <= seg.e; l++) flops += p.layers[l].decodeFlops;
  let t = 0;
  if (seg.s === 0) {
    flops += p.embedding.decodeFlops;
    t += lat(p, seg.d) + TOKEN_ID_BYTES / dev.downlinkBytesPerSec;
  } else {
    t +=
      lat(p, dp) +
      lat(p, seg.d) +
      p.layers[seg.s - 1].decodeActivationBytes / Math.min(p.devices[dp].uplinkBytesPerSec, dev.downlinkBytesPerSec);
  }
  if (seg.e === p.layers.length - 1) {
    flops += p.head.decodeFlops;
    t += lat(p, seg.d) + TOKEN_ID_BYTES / dev.uplinkBytesPerSec;
  }
  return t + flops / dev.flops;
}

/** Cost of a whole plan (segments in pipeline order). */
export function evaluatePlan(p: Problem, segs: Seg[]): PlanCost {
  let finish = 0;
  let perToken = 0;
  for (let n = 0; n < segs.length; n++) {
    const dp = n === 0 ? -1 : segs[n - 1].d;
    finish = segmentFinishSec(p, segs[n], dp, finish);
    perToken += segmentDecodeSec(p, segs[n], dp);
  }
  return { ttftSec: finish, perTokenSec: perToken, objectiveSec: finish + p.decodeTokens * perToken };
}

/** True when segs cover layers 0..L-1 exactly once, contiguously, on distinct devices. */
export function isValidChain(p: Problem, segs: Seg[]): boolean {
  let next = 0;
  const used = new Set<number>();
  for (const g of segs) {
    if (g.s !== next || g.e < g.s || used.has(g.d) || g.d < 0 || g.d >= p.devices.length) return false;
    used.add(g.d);
    next = g.e + 1;
  }
  return next === p.layers.length;
}
