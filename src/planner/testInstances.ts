// Random small planning instances for the planner's property tests (fast-check arbitraries) and brute force.
import fc from 'fast-check';
import { compileScenario, type Problem } from './scenario.ts';
import { evaluatePlan, isValidChain, segmentFits, type Seg } from './costModel.ts';
import type { CostModelName, Scenario, UnitRates } from './types.ts';

const logUniform = (lo: number, hi: number) =>
  fc.double({ min: Math.log(lo), max: Math.log(hi), noNaN: true }).map(Math.exp);

export function deviceArb(i: number, shoal: boolean) {
  return fc
    .record({
      flops: logUniform(1e12, 1e14),
      loadBytesPerSec: logUniform(1e8, 5e9),
      memFactor: fc.double({ min: 0.5, max: 4, noNaN: true }),
      uplinkBytesPerSec: logUniform(1e7, 1e9),
      downlinkBytesPerSec: logUniform(1e7, 1e9),
      uploadBytesPerSec: shoal ? fc.option(logUniform(1e8, 2e10), { nil: undefined }) : fc.constant(undefined),
      latencySec: shoal
        ? fc.option(fc.double({ min: 0, max: 0.05, noNaN: true }), { nil: undefined })
        : fc.constant(undefined),
      // Units already here (bit l: layer l in memory; bits 14, 15: head, embedding in a cache) - issue 21.
      holds: shoal ? fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }) : fc.constant(undefined),
    })
    .map((r) => ({ ...r, id: `d${i}` }));
}

/** Per-unit rates from a bit mask: layers held in memory (Infinity), the head and embedding in a fast cache. */
function unitRatesOf(mask: number, nLayers: number): UnitRates {
  const layers: Record<number, number> = {};
  for (let l = 0; l < Math.min(14, nLayers); l++) if (mask & (1 << l)) layers[l] = Infinity;
  return {
    layers,
    ...(mask & (1 << 14) ? { head: 3e10 } : {}),
    ...(mask & (1 << 15) ? { embedding: 3e10 } : {}),
  };
}

/** A scenario with explicit layers; memory per device is a random multiple of an even share, so it often binds. */
export function scenarioArb(opts: {
  maxDevices: number;
  maxLayers: number;
  costModel?: CostModelName;
  minDevices?: number;
  minLayers?: number;
}): fc.Arbitrary<Scenario> {
  const cm = opts.costModel ? fc.constant(opts.costModel) : fc.constantFrom<CostModelName>('csgo', 'shoal');
  return cm.chain((costModel) => {
    const shoal = costModel === 'shoal';
    return fc
      .record({
        nDevices: fc.integer({ min: opts.minDevices ?? 1, max: opts.maxDevices }),
        layers: fc.array(
          fc.record({
            paramBytes: logUniform(1e8, 1e9),
            flops: logUniform(1e10, 1e13),
            activationBytes: logUniform(1e5, 1e8),
            decodeFlops: logUniform(1e8, 1e10),
            kvBytesPerToken: logUniform(1e3, 1e5),
            workspaceBytes: logUniform(1e6, 1e8),
          }),
          { minLength: opts.minLayers ?? 1, maxLength: opts.maxLayers },
        ),
        embedding: fc.record({ paramBytes: logUniform(1e7, 1e9), flops: fc.constant(0) }),
        head: fc.record({
          paramBytes: logUniform(1e7, 1e9),
          flops: logUniform(1e8, 1e11),
          workspaceBytes: logUniform(1e4, 1e6),
        }),
        tied: fc.boolean(),
        decodeTokens: shoal ? fc.constantFrom(0, 0, 1, 16, 256) : fc.constant(0),
        promptTokens: fc.integer({ min: 1, max: 4096 }),
        returnLogits: fc.boolean(),
        devices: fc.array(deviceArb(0, shoal), { minLength: opts.maxDevices, maxLength: opts.maxDevices }),
        identical: fc.boolean(),
      })
      .map((r) => {
        const perLayer = (l: (typeof r.layers)[number]) =>
          l.paramBytes +
          (shoal ? (r.promptTokens + r.decodeTokens) * l.kvBytesPerToken + l.workspaceBytes : l.activationBytes);
        const total =
          r.layers.reduce((a, l) => a + perLayer(l), 0) + (shoal ? r.embedding.paramBytes + r.head.paramBytes : 0);
        let devices = r.devices.slice(0, r.nDevices);
        // sometimes clone the first device, so the identical-device merging in the DP is exercised
        if (r.identical && devices.length > 1) devices = devices.map((d, i) => (i % 2 === 1 ? { ...devices[0] } : d));
        return {
          costModel,
          promptTokens: r.promptTokens,
          decodeTokens: r.decodeTokens,
          returnLogits: r.returnLogits,
          model: shoal
            ? { layers: r.layers, embedding: r.embedding, head: r.head, tiedEmbeddings: r.tied }
            : {
                layers: r.layers.map(({ paramBytes, flops, activationBytes }) => ({
                  paramBytes,
                  flops,
                  activationBytes,
                })),
              },
          devices: devices.map((d, i) => {
            const dev: Record<string, unknown> = {
              id: `d${i}`,
              flops: d.flops,
              loadBytesPerSec: d.loadBytesPerSec,
              memoryBytes: (d.memFactor * total) / r.nDevices,
              uplinkBytesPerSec: d.uplinkBytesPerSec,
              downlinkBytesPerSec: d.downlinkBytesPerSec,
            };
            if (d.uploadBytesPerSec !== undefined) dev.uploadBytesPerSec = d.uploadBytesPerSec;
            if (d.latencySec !== undefined) dev.latencySec = d.latencySec;
            if (d.holds !== undefined) dev.unitBytesPerSec = unitRatesOf(d.holds, r.layers.length);
            return dev;
          }),
        } as unknown as Scenario;
      });
  });
}

/** Every ordered subset of devices and every cut of the layers, evaluated with the reference cost model. */
export function bruteForce(p: Problem): { objectiveSec: number; segs: Seg[] | null } {
  const K = p.devices.length;
  const L = p.layers.length;
  let best = Infinity;
  let bestSegs: Seg[] | null = null;
  const order: number[] = [];
  const used = new Array<boolean>(K).fill(false);
  const cuts = (n: number): number[][] => {
    // all ways to end segments 0..n-2 strictly increasing in [0, L-2]; the last ends at L-1
    const out: number[][] = [];
    const rec = (k: number, from: number, acc: number[]) => {
      if (k === n - 1) return void out.push([...acc, L - 1]);
      for (let e = from; e <= L - 2 - (n - 2 - k); e++) rec(k + 1, e + 1, [...acc, e]);
    };
    rec(0, 0, []);
    return out;
  };
  const visit = () => {
    const n = order.length;
    if (n === 0 || n > L) return;
    for (const ends of cuts(n)) {
      const segs = order.map((d, k) => ({ d, s: k === 0 ? 0 : ends[k - 1] + 1, e: ends[k] }));
      if (!segs.every((g) => segmentFits(p, g))) continue;
      const v = evaluatePlan(p, segs).objectiveSec;
      if (v < best) [best, bestSegs] = [v, segs];
    }
  };
  const rec = () => {
    visit();
    for (let d = 0; d < K; d++) {
      if (used[d]) continue;
      used[d] = true;
      order.push(d);
      rec();
      order.pop();
      used[d] = false;
    }
  };
  rec();
  return { objectiveSec: best, segs: bestSegs };
}

export function checkChain(p: Problem, segs: Seg[]): void {
  if (!isValidChain(p, segs)) throw new Error(`not a valid chain: ${JSON.stringify(segs)}`);
  for (const g of segs) if (!segmentFits(p, g)) throw new Error(`segment does not fit: ${JSON.stringify(g)}`);
}

export { compileScenario };
