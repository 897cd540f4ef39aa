// Simulator: replays a plan layer by layer under a cost model and records every device's intervals.
// It is written event by event, independently of the DP's tables, so tests can hold the two against each other.
import { TOKEN_ID_BYTES, type Problem } from './scenario.ts';
import { hopSec, itemLoadSec, outSec, segmentItems, type Seg, type SegItem } from './costModel.ts';
import { withIdle, type Interval, type Timeline } from './timeline.ts';

export interface SimResult {
  timeline: Timeline;
  ttftSec: number;
  perTokenSec: number;
  /** ttft + decodeTokens x perToken: the end of the last interval. */
  totalSec: number;
}

type AddInterval = (
  d: number,
  kind: Interval['kind'],
  startSec: number,
  endSec: number,
  extra?: Partial<Interval>,
) => void;

/** A load item's bytes, label and 1-based layer, as its intervals carry them. */
const itemInfo = (it: SegItem): Partial<Interval> => ({
  bytes: it.bytes,
  label: it.label,
  ...(it.layer !== undefined ? { layer: it.layer + 1 } : {}),
});

/**
 * A segment's loads (and, in the shoal model, uploads) from t = 0, one item after another. Returns when loading
 * ends and when each item is ready to compute.
 */
function simulateLoads(p: Problem, g: Seg, items: SegItem[], add: AddInterval): { loaded: number; ready: number[] } {
  const dev = p.devices[g.d];
  let loaded = 0;
  let uploaded = 0;
  const ready: number[] = [];
  for (const it of items) {
    const l0 = loaded;
    loaded += itemLoadSec(dev, it);
    add(g.d, 'load', l0, loaded, itemInfo(it));
    if (p.costModel === 'shoal' && dev.uploadBytesPerSec) {
      const u0 = Math.max(loaded, uploaded);
      uploaded = u0 + it.bytes / dev.uploadBytesPerSec;
      add(g.d, 'upload', u0, uploaded, itemInfo(it));
      ready.push(uploaded);
    } else ready.push(loaded);
  }
  return { loaded, ready };
}

/**
 * Decode from `startSec`: one sequence, so each step walks the chain once; the sampled id goes straight back to the
 * first stage. Returns the end of the last step and the time of one.
 */
function simulateDecode(p: Problem, segs: Seg[], startSec: number, add: AddInterval): { t: number; perToken: number } {
  const L = p.layers.length;
  const last = segs[segs.length - 1].d;
  const first = segs[0].d;
  const lat = (d: number) => p.devices[d].latencySec ?? 0;
  let t = startSec;
  let perToken = 0;
  for (let k = 1; k <= p.decodeTokens; k++) {
    const t0 = t;
    const back = lat(last) + TOKEN_ID_BYTES / p.devices[last].uplinkBytesPerSec;
    const into = lat(first) + TOKEN_ID_BYTES / p.devices[first].downlinkBytesPerSec;
    add(last, 'send', t, t + back, { bytes: TOKEN_ID_BYTES, tokenIndex: k, label: 'token' });
    add(first, 'recv', t + back, t + back + into, { bytes: TOKEN_ID_BYTES, tokenIndex: k, label: 'token' });
    t += back + into;
    segs.forEach((g, n) => {
      const dev = p.devices[g.d];
      if (n > 0) {
        const dp = segs[n - 1].d;
        const bytes = p.layers[g.s - 1].decodeActivationBytes;
        const h = lat(dp) + lat(g.d) + bytes / Math.min(p.devices[dp].uplinkBytesPerSec, dev.downlinkBytesPerSec);
        add(dp, 'send', t, t + h, { bytes, tokenIndex: k, label: `activations after layer ${g.s}` });
        add(g.d, 'recv', t, t + h, { bytes, tokenIndex: k, label: `activations after layer ${g.s}` });
        t += h;
      }
      let flops = 0;
      for (let l = g.s; l <= g.e; l++) flops += p.layers[l].decodeFlops;
      if (g.s === 0) flops += p.embedding.decodeFlops;
      if (g.e === L - 1) flops += p.head.decodeFlops;
      add(g.d, 'compute', t, t + flops / dev.flops, { tokenIndex: k, label: `decode layers ${g.s + 1}-${g.e + 1}` });
      t += flops / dev.flops;
    });
    perToken = t - t0;
  }
  return { t, perToken };
}

export function simulateSegs(p: Problem, segs: Seg[]): SimResult {
  const iv: Interval[] = [];
  const add: AddInterval = (d, kind, startSec, endSec, extra = {}) =>
    iv.push({ device: p.devices[d].id, kind, startSec, endSec, ...extra });
  const shoal = p.costModel === 'shoal';
  let prevFinish = 0;
  for (let n = 0; n < segs.length; n++) {
    const g = segs[n];
    const dev = p.devices[g.d];
    const dp = n === 0 ? -1 : segs[n - 1].d;
    const items = segmentItems(p, g.s, g.e);
    const { loaded, ready } = simulateLoads(p, g, items, add);
    const hop = hopSec(p, dp, g.d, g.s);
    // csgo: the transfer starts once the segment has loaded and the predecessor finished (eq. t_start).
    const hopStart = shoal ? prevFinish : Math.max(loaded, prevFinish);
    const inBytes = dp < 0 ? p.tokenInBytes : p.layers[g.s - 1].activationBytes;
    if (hop > 0 || dp >= 0) {
      if (dp >= 0)
        add(dp, 'send', hopStart, hopStart + hop, {
          bytes: inBytes,
          tokenIndex: 0,
          label: `activations after layer ${g.s}`,
        });
      add(g.d, 'recv', hopStart, hopStart + hop, {
        bytes: inBytes,
        tokenIndex: 0,
        label: dp < 0 ? 'token ids' : `activations after layer ${g.s}`,
      });
    }
    let computed = hopStart + hop;
    items.forEach((it, k) => {
      const c0 = shoal ? Math.max(ready[k], computed) : computed;
      computed = c0 + it.flops / dev.flops;
      add(g.d, 'compute', c0, computed, {
        tokenIndex: 0,
        label: it.label,
        ...(it.layer !== undefined ? { layer: it.layer + 1 } : {}),
      });
    });
    prevFinish = computed;
  }
  const last = segs[segs.length - 1].d;
  const out = outSec(p, last);
  const ttft = prevFinish + out;
  const outLabel = p.tokenOutBytes > TOKEN_ID_BYTES ? 'logits' : 'token';
  if (shoal) add(last, 'send', prevFinish, ttft, { bytes: p.tokenOutBytes, tokenIndex: 0, label: outLabel });
  const { t, perToken } = simulateDecode(p, segs, prevFinish, add);
  if (p.decodeTokens > 0)
    add(last, 'send', t, t + out, { bytes: p.tokenOutBytes, tokenIndex: p.decodeTokens, label: outLabel });
  const timeline = withIdle({ devices: p.devices.map((d) => d.id), intervals: iv, ttftSec: ttft });
  return { timeline, ttftSec: ttft, perTokenSec: perToken, totalSec: t + out };
}
