// Precomputed typed-array tables that turn every segment cost into O(1) lookups for the DP and the heuristic.
//
// For segment s..e on device d after predecessor dp with finish x (costModel.ts has the equations):
//   finish = max(x + hop(dp, d, s) + A[d, s, e], B[d, s, e] + kappa * hop(dp, d, s))
//   "csgo":  A = t_comp, B = t_load + t_comp, kappa = 1  (max(t_load, x) + t_comm + t_comp, rewritten)
//   "shoal": A = sum of item compute times (+ out on the last segment), B = H (+ out), kappa = 0
// The tables are checked against the item-by-item reference (segmentFinishSec) in tables.test.ts.
import { ShoalError } from '../errors.ts';
import { TOKEN_ID_BYTES, type Problem } from './scenario.ts';
import { headLoadBytes, hopSec, outSec } from './costModel.ts';
import { unitLoadSec } from './types.ts';

/** Above this many K x L x L (or K x K x L) entries the tables would not fit comfortably in a tab. */
const MAX_TABLE_ENTRIES = 4e7;

export class Tables {
  readonly K: number;
  readonly L: number;
  readonly kappa: number;
  readonly decodeTokens: number;
  /** (d, s) -> largest e such that s..e fits d's memory (s - 1 if none). */
  readonly maxEnd: Int32Array;
  /** (d, e) -> smallest s such that s..e fits (e + 1 if none). */
  readonly minStart: Int32Array;
  /** (d, s, e) -> A and B above. */
  readonly A: Float64Array;
  readonly B: Float64Array;
  /** (dp, d, s) -> hop into a segment starting at s >= 1; first[d] for s = 0. */
  readonly hop: Float64Array;
  readonly hopFirst: Float64Array;
  /** Decode: (dp, d, s) hop share, per-device prefix sums of layer decode seconds, first/last extras. */
  readonly decHop: Float64Array;
  readonly decPrefix: Float64Array;
  readonly decFirst: Float64Array;
  readonly decLast: Float64Array;

  constructor(readonly p: Problem) {
    const K = (this.K = p.devices.length);
    const L = (this.L = p.layers.length);
    if (K * L * L > MAX_TABLE_ENTRIES || K * K * L > MAX_TABLE_ENTRIES) {
      throw new ShoalError(
        'ERR_BAD_SCENARIO',
        `scenario: ${K} devices x ${L} layers is too large to plan ` +
          `(keep devices x layers^2 and devices^2 x layers under ${MAX_TABLE_ENTRIES})`,
      );
    }
    this.kappa = p.costModel === 'csgo' ? 1 : 0;
    this.decodeTokens = p.decodeTokens;
    this.maxEnd = new Int32Array(K * L);
    this.minStart = new Int32Array(K * L).fill(0);
    this.A = new Float64Array(K * L * L);
    this.B = new Float64Array(K * L * L);
    this.hop = new Float64Array(K * K * L);
    this.hopFirst = new Float64Array(K);
    this.decHop = new Float64Array(K * K * L);
    this.decPrefix = new Float64Array(K * (L + 1));
    this.decFirst = new Float64Array(K);
    this.decLast = new Float64Array(K);
    this.buildMemory();
    this.buildTimes();
    this.buildHops();
  }

  private buildMemory(): void {
    const { p, K, L } = this;
    const shoal = p.costModel === 'shoal';
    for (let d = 0; d < K; d++) {
      const mem = p.devices[d].memoryBytes;
      for (let s = 0; s < L; s++) {
        // Incremental form of segmentMemoryBytes: every term only grows with e.
        let params = shoal && s === 0 ? p.embedding.paramBytes : 0;
        let maxAct = 0;
        let kv = 0;
        let work = 0;
        let end = s - 1;
        for (let e = s; e < L; e++) {
          const layer = p.layers[e];
          params += layer.paramBytes;
          maxAct = Math.max(maxAct, layer.activationBytes);
          kv += layer.kvBytesPerToken;
          work = Math.max(work, layer.workspaceBytes);
          let need = maxAct + params;
          if (shoal) {
            need = params + p.contextTokens * kv + work;
            if (e === L - 1)
              need = params + headLoadBytes(p, s) + p.contextTokens * kv + Math.max(work, p.head.workspaceBytes);
          }
          if (need > mem) break;
          end = e;
        }
        this.maxEnd[d * L + s] = end;
      }
      // minStart from maxEnd: s..e fits iff maxEnd[s] >= e, and fitting is monotone in s.
      let s = 0;
      for (let e = 0; e < L; e++) {
        while (s <= e && this.maxEnd[d * L + s] < e) s++;
        this.minStart[d * L + e] = s;
      }
    }
  }

  private buildTimes(): void {
    const { p, K, L } = this;
    const shoal = p.costModel === 'shoal';
    for (let d = 0; d < K; d++) {
      const dev = p.devices[d];
      const c = dev.flops;
      const u = dev.uploadBytesPerSec;
      const out = outSec(p, d);
      for (let s = 0; s < L; s++) {
        const base = (d * L + s) * L;
        let loaded = 0;
        let uploaded = 0;
        let comp = 0;
        let H = -Infinity; // max_i (U_i + compute of items i..last): advanced as H' = max(H, U_i) + w_i
        if (shoal && s === 0) {
          const b = p.embedding.paramBytes;
          loaded = unitLoadSec(dev, 'embedding', b);
          uploaded = loaded + (u ? b / u : 0);
          comp = p.embedding.flops / c;
          H = uploaded + comp;
        }
        for (let e = s; e < L; e++) {
          const layer = p.layers[e];
          const w = layer.flops / c;
          loaded += unitLoadSec(dev, e, layer.paramBytes);
          uploaded = Math.max(loaded, uploaded) + (u ? layer.paramBytes / u : 0);
          comp += w;
          H = Math.max(H, uploaded) + w;
          if (!shoal) {
            this.A[base + e] = comp;
            this.B[base + e] = loaded + comp;
          } else if (e < L - 1) {
            this.A[base + e] = comp;
            this.B[base + e] = H;
          } else {
            const hb = headLoadBytes(p, s);
            const hw = p.head.flops / c;
            const hl = loaded + unitLoadSec(dev, 'head', hb);
            const hu = Math.max(hl, uploaded) + (u ? hb / u : 0);
            this.A[base + e] = comp + hw + out;
            this.B[base + e] = Math.max(H, hu) + hw + out;
          }
        }
      }
    }
  }

  private buildHops(): void {
    const { p, K, L } = this;
    const shoal = p.costModel === 'shoal';
    for (let d = 0; d < K; d++) {
      this.hopFirst[d] = hopSec(p, -1, d, 0);
      const dev = p.devices[d];
      const latD = dev.latencySec ?? 0;
      for (let dp = 0; dp < K; dp++) {
        const rate = Math.min(p.devices[dp].uplinkBytesPerSec, dev.downlinkBytesPerSec);
        const latPair = (p.devices[dp].latencySec ?? 0) + latD;
        for (let s = 1; s < L; s++) {
          this.hop[(dp * K + d) * L + s] = hopSec(p, dp, d, s);
          if (shoal) this.decHop[(dp * K + d) * L + s] = latPair + p.layers[s - 1].decodeActivationBytes / rate;
        }
      }
      if (shoal) {
        let acc = 0;
        for (let l = 0; l < L; l++) {
          this.decPrefix[d * (L + 1) + l] = acc;
          acc += p.layers[l].decodeFlops / dev.flops;
        }
        this.decPrefix[d * (L + 1) + L] = acc;
        this.decFirst[d] = p.embedding.decodeFlops / dev.flops + latD + TOKEN_ID_BYTES / dev.downlinkBytesPerSec;
        this.decLast[d] = p.head.decodeFlops / dev.flops + latD + TOKEN_ID_BYTES / dev.uplinkBytesPerSec;
      }
    }
  }

  fits(d: number, s: number, e: number): boolean {
    return this.maxEnd[d * this.L + s] >= e;
  }

  /** Prefill finish of s..e on d after dp (-1: first segment) finished at x. */
  finish(d: number, dp: number, s: number, e: number, x: number): number {
    const i = (d * this.L + s) * this.L + e;
    const h = dp < 0 ? this.hopFirst[d] : this.hop[(dp * this.K + d) * this.L + s];
    return Math.max(x + h + this.A[i], this.B[i] + this.kappa * h);
  }

  /** This segment's share of one decode step. */
  decode(d: number, dp: number, s: number, e: number): number {
    if (this.decodeTokens === 0) return 0;
    const L = this.L;
    let t = this.decPrefix[d * (L + 1) + e + 1] - this.decPrefix[d * (L + 1) + s];
    t += dp < 0 ? this.decFirst[d] : this.decHop[(dp * this.K + d) * L + s];
    if (e === L - 1) t += this.decLast[d];
    return t;
  }
}
