// Deterministic larger instances (K devices, L layers) for the scale benchmark and the timing tests.
import type { Scenario } from './types.ts';
import { rng } from './heuristic.ts';

/**
 * A heterogeneous fleet of K distinct devices for an 80-layer, 70B-class model at bf16 (a llama-3-70B-like layer):
 * phones to desktops, compute 2-200 TFLOP/s, load 50 MB/s - 5 GB/s, memory 4-48 GB.
 */
export function fleetScenario(
  K: number,
  L = 80,
  costModel: 'csgo' | 'shoal' = 'csgo',
  seed = 1,
  decodeTokens = 0,
): Scenario {
  const r = rng(seed);
  const logU = (lo: number, hi: number) => Math.exp(Math.log(lo) + r() * (Math.log(hi) - Math.log(lo)));
  const t = 512;
  const dim = 8192;
  const layer = {
    paramBytes: 2 * 855_638_016,
    flops: 2 * t * 855_638_016 + 4 * t * t * 8192,
    activationBytes: 2 * t * dim,
  };
  const devices = Array.from({ length: K }, (_, i) => ({
    id: `dev${i + 1}`,
    flops: logU(2e12, 2e14),
    loadBytesPerSec: logU(5e7, 5e9),
    memoryBytes: logU(4e9, 48e9),
    uplinkBytesPerSec: logU(1e7, 1e9),
    downlinkBytesPerSec: logU(1e7, 1e9),
  }));
  // make sure the fleet can hold the model (the benchmark measures planning, not refusals)
  const need = L * layer.paramBytes * 1.3;
  const have = devices.reduce((a, d) => a + d.memoryBytes, 0);
  if (have < need) for (const d of devices) d.memoryBytes *= need / have;
  return {
    costModel,
    promptTokens: t,
    decodeTokens,
    model: { layers: Array.from({ length: L }, () => ({ ...layer })) },
    devices,
  };
}
