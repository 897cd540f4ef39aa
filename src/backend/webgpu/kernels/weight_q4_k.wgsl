// Weight binding `NAME` in Q4_K super-blocks of 256 values, 144 bytes = 36 words (already word-aligned): f16 d,
// f16 dmin, 12 bytes of 6-bit scales and mins (get_scale_min_k4), 128 bytes of nibbles; each 64-value group is two
// sub-blocks of 32 (low nibbles, then high nibbles of the same 32 bytes); value d*sc*q - dmin*m.
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
// Byte k of the 12 scale bytes of the block starting at word wb.
fn NAME_sbyte(wb: u32, k: u32) -> u32 { return (NAME[wb + 1u + (k >> 2u)] >> ((k & 3u) * 8u)) & 0xffu; }
// (d*sc, dmin*m) of sub-block j: sub-blocks 0..3 in the low 6 bits of bytes 0..3 / 4..7; 4..7 take a low nibble
// from bytes 8..11 and their top two bits from the spare high bits of bytes 0..3 (scales) and 4..7 (mins).
fn NAME_scaleMin(wb: u32, j: u32) -> vec2<f32> {
  var sc: u32;
  var m: u32;
  if (j < 4u) {
    sc = NAME_sbyte(wb, j) & 63u;
    m = NAME_sbyte(wb, j + 4u) & 63u;
  } else {
    let lo = NAME_sbyte(wb, j + 4u);
    sc = (lo & 0xfu) | ((NAME_sbyte(wb, j - 4u) >> 6u) << 4u);
    m = (lo >> 4u) | ((NAME_sbyte(wb, j) >> 6u) << 4u);
  }
  // d*sc and dmin*m are exact in f32 (11-bit by 6-bit mantissas), as in the CPU dequantizer.
  return unpack2x16float(NAME[wb]) * vec2<f32>(f32(sc), f32(m));
}
// Value v of a block: sub-block v/32 (2 per 64-value group), byte 16 + 32*(v/64) + v%32, high nibble in odd sub-blocks.
fn NAME_at(i: u32) -> f32 {
  let wb = (i >> 8u) * 36u;
  let v = i & 255u;
  let sub = v >> 5u; // 2 * group + (high nibble)
  let o = 16u + 32u * (v >> 6u) + (v & 31u);
  let q = (NAME[wb + (o >> 2u)] >> ((o & 3u) * 8u + (sub & 1u) * 4u)) & 0xfu;
  let dm = NAME_scaleMin(wb, sub);
  return dm.x * f32(q) - dm.y;
}
// i must be even: values v and v+1 share a sub-block and sit in adjacent bytes at an even offset (one word).
fn NAME_at2(i: u32) -> vec2<f32> {
  let wb = (i >> 8u) * 36u;
  let v = i & 255u;
  let sub = v >> 5u;
  let o = 16u + 32u * (v >> 6u) + (v & 31u);
  let w = NAME[wb + (o >> 2u)] >> ((o & 3u) * 8u + (sub & 1u) * 4u);
  let dm = NAME_scaleMin(wb, sub);
  return dm.x * vec2<f32>(f32(w & 0xfu), f32((w >> 8u) & 0xfu)) - dm.y;
}
