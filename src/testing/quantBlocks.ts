// Hand-built llama.cpp blocks for the dequantizer checks (WGSL in e2e, WebAssembly SIMD in unit tests): every byte
// value in the quant fields and the awkward scales (zero, negative, f16 subnormal, f16 max), written field by field
// from the layouts in src/weights/quant.ts.
import { BLOCKS, type QuantDtype } from '../weights/types.ts';

/** f16 bit patterns the scales cycle through: 0, -0.5, 1, the smallest subnormal, -2^-14, 65504, ~0.1, -0. */
const F16_SCALES = [0x0000, 0xb800, 0x3c00, 0x0001, 0x8400, 0x7bff, 0x2e66, 0x8000];

function putF16Bits(b: Uint8Array, o: number, h: number): void {
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

/**
 * Byte k of a block's field is (step * (block * fieldBytes + k) + 5) mod 256: step is odd, so over 256 / fieldBytes
 * blocks every byte value occurs (all i8 values, both nibbles at every value, every 2-bit field, every 6-bit scale
 * with and without its spare high bits set).
 */
function fill(b: Uint8Array, o: number, n: number, block: number, step: number): void {
  for (let k = 0; k < n; k++) b[o + k] = (step * (block * n + k) + 5) & 0xff;
}

/** One block of `dtype` at byte o: the scale(s) from F16_SCALES, every other byte from fill(). */
function buildBlock(dtype: QuantDtype, b: Uint8Array, o: number, blk: number): void {
  const scale = (shift: number) => F16_SCALES[(blk + shift) % F16_SCALES.length];
  switch (dtype) {
    case 'Q8_0': // f16 d, 32 x i8
      putF16Bits(b, o, scale(0));
      fill(b, o + 2, 32, blk, 1);
      break;
    case 'Q4_0': // f16 d, 16 bytes of nibbles
      putF16Bits(b, o, scale(0));
      fill(b, o + 2, 16, blk, 1);
      break;
    case 'Q5_0': // f16 d, u32 qh (5th bits), 16 bytes of nibbles
      putF16Bits(b, o, scale(0));
      fill(b, o + 2, 4, blk, 3);
      fill(b, o + 6, 16, blk, 1);
      break;
    case 'Q4_K': // f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes
      putF16Bits(b, o, scale(0));
      putF16Bits(b, o + 2, scale(3));
      fill(b, o + 4, 12, blk, 23);
      fill(b, o + 16, 128, blk, 1);
      break;
    case 'Q6_K': // ql[128], qh[64], 16 x i8 scales, f16 d
      fill(b, o, 128, blk, 1);
      fill(b, o + 128, 64, blk, 7);
      fill(b, o + 192, 16, blk, 29);
      putF16Bits(b, o + 208, scale(0));
      break;
  }
}

/** A (rows, cols) matrix of hand-built blocks (cols a multiple of the block size). */
export function handBuiltBlocks(dtype: QuantDtype, rows: number, cols: number): Uint8Array {
  const { values, bytes } = BLOCKS[dtype];
  const n = (rows * cols) / values;
  const out = new Uint8Array(n * bytes);
  for (let blk = 0; blk < n; blk++) buildBlock(dtype, out, blk * bytes, blk);
  return out;
}

/** Shapes that cover every byte value of each field (see fill) in few rows, with more than one block per row. */
export const HAND_BUILT_SHAPES: Record<QuantDtype, [number, number]> = {
  Q8_0: [9, 64], // 18 blocks of 32 i8: 576 bytes
  Q4_0: [11, 64], // 22 blocks of 16 nibble bytes
  Q5_0: [32, 64], // 64 blocks x 4 qh bytes (step 3): every value of each qh byte, so every bit both ways
  Q4_K: [23, 256], // 23 blocks x 12 scale bytes (step 23): all 256 values
  Q6_K: [9, 512], // 18 blocks x 16 i8 scales (step 29)
};
