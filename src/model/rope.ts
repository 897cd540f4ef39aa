// RoPE inverse frequencies, Hugging Face convention (inv_freq = theta^(-2i/headDim)), with llama3 scaling.
import type { ModelSpec } from './config.ts';

/** (headDim/2) inverse frequencies; llama3 scaling as in transformers' _compute_llama3_parameters. */
export function ropeInvFreq(spec: Pick<ModelSpec, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const half = spec.headDim / 2;
  const out = new Float32Array(half);
  const rs = spec.ropeScaling;
  for (let i = 0; i < half; i++) {
    let f = Math.pow(spec.ropeTheta, -(2 * i) / spec.headDim);
    if (rs) {
      const lowFreqWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
      const highFreqWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowFreqWavelen) f = f / rs.factor;
      else if (wavelen >= highFreqWavelen) {
        // medium band: interpolate between scaled and unscaled
        const smooth =
          (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        f = (1 - smooth) * (f / rs.factor) + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}
