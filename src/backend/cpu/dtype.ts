// Decode safetensors bytes (F32, F16, BF16, little-endian) into f32: the CPU backend computes in f32.
import type { WeightDtype } from '../types.ts';

const F16_TABLE = (() => {
  // All 65536 half values, decoded once: exact, and faster than bit twiddling per element.
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function decodeToF32(dtype: WeightDtype, bytes: Uint8Array): Float32Array {
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    return new Float32Array(bytes.slice().buffer);
  }
  const n = bytes.byteLength / 2;
  const u16 = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.slice().buffer);
  const out = new Float32Array(n);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = u16[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = F16_TABLE[u16[i]];
  }
  return out;
}
