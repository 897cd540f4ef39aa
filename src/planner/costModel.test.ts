// Both cost models on instances small enough to work out by hand (the property tests cannot catch a shared misreading).
import { describe, expect, it } from 'vitest';
import { compileScenario } from './scenario.ts';
import { evaluatePlan, segmentMemoryBytes } from './costModel.ts';
import { exactDp } from './exactDp.ts';
import { Tables } from './tables.ts';
import { layerCosts } from './layerCosts.ts';
import { parseConfig } from '../model/config.ts';
import { QWEN3_14B_CONFIG, shannonBytesPerSec } from './paper.ts';
import type { Scenario } from './types.ts';

const layer = { paramBytes: 1e9, flops: 1e12, activationBytes: 1e6 };
/** A two-layer plan, one layer a device: `first` holds layer 0, `second` layer 1. */
const oneLayerEach = (first: number, second: number) => [
  { d: first, s: 0, e: 0 },
  { d: second, s: 1, e: 1 },
];
const devA = {
  id: 'a',
  flops: 1e12,
  loadBytesPerSec: 1e9,
  memoryBytes: 1e10,
  uplinkBytesPerSec: 1e7,
  downlinkBytesPerSec: 1e8,
};
const devB = {
  id: 'b',
  flops: 2e12,
  loadBytesPerSec: 2e9,
  memoryBytes: 1e10,
  uplinkBytesPerSec: 1e8,
  downlinkBytesPerSec: 1e8,
};

describe('csgo cost model (PAPERS.md eq. 17-22)', () => {
  it('t_finish(n) = max(t_load(n), t_finish(n-1)) + t_comm(n) + t_comp(n)', () => {
    const p = compileScenario({
      costModel: 'csgo',
      promptTokens: 10,
      model: { layers: [layer, layer] },
      devices: [devA, devB],
    });
    // a: load 1 s, compute 1 s -> 2 s.
    // b: load 0.5 s, comm 1e6 / min(1e7, 1e8) = 0.1 s, compute 0.5 s -> max(0.5, 2) + 0.6
    expect(evaluatePlan(p, oneLayerEach(0, 1)).objectiveSec).toBeCloseTo(2.6, 12);
    // the other way round: b finishes at 1; a: max(1, 1) + 1e6 / min(1e8, 1e8) + 1 = 2.01
    expect(evaluatePlan(p, oneLayerEach(1, 0)).objectiveSec).toBeCloseTo(2.01, 12);
    // memory: max A + sum P
    expect(segmentMemoryBytes(p, 0, 1)).toBe(2e9 + 1e6);
  });

  it('derives P, W, A of Qwen3-14B as the paper writes them, and Shannon rates in bytes/s', () => {
    const c = layerCosts(parseConfig(QWEN3_14B_CONFIG), { costModel: 'csgo', promptTokens: 256, bytesPerParam: 2 });
    expect(c.layers).toHaveLength(40);
    expect(c.layers[0].paramBytes).toBe(4 * 5120 * 128 * 48 + 6 * 5120 * 17408);
    expect(c.layers[0].flops).toBe(4 * 256 * 128 * (5120 * 40 + 5120 * 8 + 256 * 40) + 6 * 256 * 5120 * 17408);
    expect(c.layers[0].activationBytes).toBe(2 * 256 * 5120);
    // device 1 uplink: 20 dBm at 1 m: SNR = 0.1 W * 10^-4.72 / (10^-20.4 W/Hz * 1.6e8 Hz)
    const snr = (0.1 * 10 ** -4.72) / (10 ** -20.4 * 1.6e8);
    expect(shannonBytesPerSec(20, 1)).toBeCloseTo((0.5 * 1.6e8 * Math.log2(1 + snr)) / 8, 3);
  });
});

describe('shoal cost model', () => {
  const base: Scenario = {
    costModel: 'shoal',
    promptTokens: 10,
    model: {
      layers: [
        { ...layer, decodeFlops: 1e10 },
        { ...layer, decodeFlops: 1e10 },
      ],
    },
    devices: [devA, devB],
  };
  it('streams layer by layer: a layer computes once it has loaded and its input is ready', () => {
    const p = compileScenario(base);
    // ids in: 40 B / 1e8 B/s; layer 1 loaded at 1, computed 1..2; layer 2 loaded at 2, computed 2..3;
    // token out 4 B / 1e7 B/s
    expect(evaluatePlan(p, [{ d: 0, s: 0, e: 1 }]).ttftSec).toBeCloseTo(3 + 4 / 1e7, 12);
  });

  it('a layer already in memory loads in no time, one in a faster cache at its rate (issue 21)', () => {
    // layer 1 held (0 s), layer 2 from a cache at 4e9 B/s (0.25 s): ids in (40 B / 1e8 B/s), layer 1 computed for
    // 1 s, layer 2 (loaded long before) for 1 s, token out
    const held = { ...devA, unitBytesPerSec: { layers: { 0: Infinity, 1: 4e9 } } };
    const p = compileScenario({ ...base, devices: [held, devB] });
    expect(evaluatePlan(p, [{ d: 0, s: 0, e: 1 }]).ttftSec).toBeCloseTo(40 / 1e8 + 2 + 4 / 1e7, 12);
    // the DP keeps the layers where they are held when loading dominates
    const slow = { ...devB, id: 'b', flops: 1e12, loadBytesPerSec: 1e8 };
    const holder = { ...slow, id: 'h', unitBytesPerSec: { layers: { 0: Infinity, 1: Infinity } } };
    const q = compileScenario({ ...base, devices: [slow, holder] });
    expect(exactDp(new Tables(q)).segs).toEqual([{ d: 1, s: 0, e: 1 }]);
  });

  it('adds GPU upload behind the load, per-hop latency, the embedding and the head', () => {
    const p = compileScenario({
      ...base,
      model: { layers: [layer, layer], embedding: { paramBytes: 5e8 }, head: { paramBytes: 5e8, flops: 1e11 } },
      devices: [
        { ...devA, uploadBytesPerSec: 1e9, latencySec: 0.01 },
        { ...devB, latencySec: 0.02 },
      ],
    });
    // a: embedding loaded 0.5, uploaded 1.0; layer 1 loaded 1.5, uploaded 2.5, computed 2.5..3.5
    // hop a -> b: 0.01 + 0.02 + 1e6 / min(1e7, 1e8) = 0.13 -> arrives 3.63
    // b: layer 2 loaded 0.5, computed 3.63..4.13; head loaded 0.75, computed 4.13..4.18; out 0.02 + 4 / 1e8
    const cost = evaluatePlan(p, oneLayerEach(0, 1));
    expect(cost.ttftSec).toBeCloseTo(4.18 + 0.02 + 4e-8, 12);
  });

  it('objective = TTFT + decodeTokens x per-token latency', () => {
    const p = compileScenario({ ...base, decodeTokens: 10 });
    const cost = evaluatePlan(p, [{ d: 0, s: 0, e: 1 }]);
    // per token: 2 x 1e10 / 1e12 of compute + the id back: 4 / 1e7 (uplink) + 4 / 1e8 (downlink)
    expect(cost.perTokenSec).toBeCloseTo(0.02 + 4e-7 + 4e-8, 12);
    expect(cost.objectiveSec).toBeCloseTo(cost.ttftSec + 10 * cost.perTokenSec, 12);
    // KV cache for promptTokens + decodeTokens is counted in memory
    const withKv = compileScenario({
      ...base,
      decodeTokens: 10,
      model: { layers: [{ ...layer, kvBytesPerToken: 1000 }] },
    });
    expect(segmentMemoryBytes(withKv, 0, 0)).toBe(1e9 + 20 * 1000);
  });

  it('derives embedding, head, KV and decode costs from a config (tied embeddings loaded once on one device)', () => {
    const spec = parseConfig({ ...QWEN3_14B_CONFIG, tie_word_embeddings: true });
    const c = layerCosts(spec, { costModel: 'shoal', promptTokens: 100, bytesPerParam: 2, contextTokens: 200 });
    expect(c.embedding.paramBytes).toBe(2 * 151936 * 5120);
    expect(c.head.flops).toBe(2 * 5120 * 151936);
    expect(c.layers[0].kvBytesPerToken).toBe(2 * 8 * 128 * 4);
    expect(c.layers[0].activationBytes).toBe(4 * 100 * 5120);
    const p = compileScenario({
      costModel: 'shoal',
      promptTokens: 100,
      model: { config: { ...QWEN3_14B_CONFIG, num_hidden_layers: 2, tie_word_embeddings: true }, bytesPerParam: 2 },
      devices: [devA],
    });
    const one = segmentMemoryBytes(p, 0, 1);
    const untied = compileScenario({
      costModel: 'shoal',
      promptTokens: 100,
      model: { config: { ...QWEN3_14B_CONFIG, num_hidden_layers: 2 }, bytesPerParam: 2 },
      devices: [devA],
    });
    expect(segmentMemoryBytes(untied, 0, 1) - one).toBe(2 * 151936 * 5120);
  });
});
