// Weight binding `NAME` in Q5_0 blocks, the file's 22-byte blocks as they are (f16 d, u32 qh whose bit j is value
// j's 5th bit, 16 bytes whose low nibbles are values 0..15 and high nibbles 16..31; value (q-16)*d), read as u32
// words with byte shifts (docs/gguf.md).
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
// The f16 scale at even byte offset o (22 * block), widened without the shader-f16 feature.
fn NAME_f16(o: u32) -> f32 { return unpack2x16float(NAME[o >> 2u] >> ((o & 2u) * 8u)).x; }
// qh starts at an even offset but not always a word: read the 16-bit half holding value j's bit (at b + 2 for values
// 0..15, b + 4 for 16..31, never straddling a word), shifted so that value j's bit is the lowest.
fn NAME_high(b: u32, j: u32) -> u32 {
  let o = b + 2u + ((j >> 4u) << 1u);
  return NAME[o >> 2u] >> ((o & 2u) * 8u + (j & 15u));
}
// The word holding value j's byte, shifted so that value j's nibble is the lowest.
fn NAME_nibbles(b: u32, j: u32) -> u32 {
  let o = b + 6u + (j & 15u);
  return NAME[o >> 2u] >> ((o & 3u) * 8u + (j >> 4u) * 4u);
}
fn NAME_at(i: u32) -> f32 {
  let b = (i >> 5u) * 22u;
  let j = i & 31u;
  let q = (NAME_nibbles(b, j) & 0xfu) | ((NAME_high(b, j) & 1u) << 4u);
  return (f32(q) - 16.0) * NAME_f16(b);
}
// i must be even: values j and j+1 sit in the same nibble of adjacent bytes at an even offset (one word), and their
// qh bits in the same half.
fn NAME_at2(i: u32) -> vec2<f32> {
  let b = (i >> 5u) * 22u;
  let j = i & 31u;
  let w = NAME_nibbles(b, j);
  let h = NAME_high(b, j);
  let q = vec2<u32>((w & 0xfu) | ((h & 1u) << 4u), ((w >> 8u) & 0xfu) | ((h & 2u) << 3u));
  return (vec2<f32>(q) - 16.0) * NAME_f16(b);
}
