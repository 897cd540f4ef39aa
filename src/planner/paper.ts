// The CSGO paper's experiment (PAPERS.md section 1, Table 1): Qwen3-14B on four devices behind one access point.
import type { DeviceProfile, Scenario } from './types.ts';

/** Qwen3-14B's config.json fields the cost model reads. */
export const QWEN3_14B_CONFIG = {
  model_type: 'qwen3',
  hidden_size: 5120,
  intermediate_size: 17408,
  num_hidden_layers: 40,
  num_attention_heads: 40,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: false,
};

/** Table 1: peak TFLOP/s c*, utilisation a (1 - exp(-b t)), disk MB/s, memory GB, uplink power dBm, distance m. */
export const PAPER_DEVICES = [
  { cStarTflops: 165, a: 0.4, b: 5.1e-4, diskMBps: 5000, memoryGB: 20, uplinkDbm: 20, distanceM: 1 },
  { cStarTflops: 70, a: 0.7, b: 8.7e-4, diskMBps: 4000, memoryGB: 10, uplinkDbm: 18, distanceM: 3 },
  { cStarTflops: 30, a: 0.8, b: 1.1e-3, diskMBps: 3000, memoryGB: 8, uplinkDbm: 15, distanceM: 5 },
  { cStarTflops: 20, a: 0.8, b: 1.8e-3, diskMBps: 2000, memoryGB: 8, uplinkDbm: 15, distanceM: 7 },
];

export const PAPER_LINK = {
  mu: 0.5,
  bandwidthHz: 160e6,
  downlinkDbm: 25,
  n0DbmPerHz: -174,
  beta0Db: -47.2,
  zeta: 3,
  d0M: 1,
};

/** Fig. 3a, read by eye (seconds). */
export const PAPER_FIG3A = [
  { t: 256, dp: 2.5, single: 5.0, even: 3.45, harmonic: 3.1 },
  { t: 1024, dp: 2.85, single: 5.2, even: 3.75, harmonic: 3.35 },
  { t: 4096, dp: 4.5, single: 6.25, even: 6.6, harmonic: 6.7 },
  { t: 8192, dp: 7.2, single: 8.25, even: 12.75, harmonic: 11.7 },
];

const dbmToWatts = (dbm: number) => 10 ** ((dbm - 30) / 10);

/** Shannon rate b = mu B log2(1 + P g / (N0 B)), g = beta0 (d / d0)^-zeta, in bytes/s (the formula gives bits). */
export function shannonBytesPerSec(powerDbm: number, distanceM: number, link = PAPER_LINK): number {
  const g = 10 ** (link.beta0Db / 10) * (distanceM / link.d0M) ** -link.zeta;
  const noiseW = dbmToWatts(link.n0DbmPerHz) * link.bandwidthHz;
  const bitsPerSec = link.mu * link.bandwidthHz * Math.log2(1 + (dbmToWatts(powerDbm) * g) / noiseW);
  return bitsPerSec / 8;
}

/** Device profiles at prompt length t: effective c_k = c* a (1 - exp(-b t)). */
export function paperDevices(t: number): DeviceProfile[] {
  return PAPER_DEVICES.map((d, i) => ({
    id: `device${i + 1}`,
    flops: d.cStarTflops * 1e12 * d.a * (1 - Math.exp(-d.b * t)),
    loadBytesPerSec: d.diskMBps * 1e6,
    memoryBytes: d.memoryGB * 1e9,
    uplinkBytesPerSec: shannonBytesPerSec(d.uplinkDbm, d.distanceM),
    downlinkBytesPerSec: shannonBytesPerSec(PAPER_LINK.downlinkDbm, d.distanceM),
  }));
}

export function paperScenario(t: number): Scenario {
  return {
    costModel: 'csgo',
    promptTokens: t,
    model: { config: QWEN3_14B_CONFIG, bytesPerParam: 2 },
    devices: paperDevices(t),
  };
}
