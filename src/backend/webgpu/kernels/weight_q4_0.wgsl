// Weight binding `NAME` in Q4_0 blocks, the file's 18-byte blocks as they are (f16 d, 16 bytes whose low nibbles
// are values 0..15 and high nibbles 16..31; value (q-8)*d), read as u32 words with byte shifts (docs/gguf.md).
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
// The f16 scale at even byte offset o (18 * block), widened without the shader-f16 feature.
fn NAME_f16(o: u32) -> f32 { return unpack2x16float(NAME[o >> 2u] >> ((o & 2u) * 8u)).x; }
// The word holding value j's byte, shifted so that value j's nibble is the lowest.
fn NAME_nibbles(b: u32, j: u32) -> u32 {
  let o = b + 2u + (j & 15u);
  return NAME[o >> 2u] >> ((o & 3u) * 8u + (j >> 4u) * 4u);
}
fn NAME_at(i: u32) -> f32 {
  let b = (i >> 5u) * 18u;
  return (f32(NAME_nibbles(b, i & 31u) & 0xfu) - 8.0) * NAME_f16(b);
}
// i must be even: values j and j+1 sit in the same nibble of adjacent bytes at an even offset (one word).
fn NAME_at2(i: u32) -> vec2<f32> {
  let b = (i >> 5u) * 18u;
  let w = NAME_nibbles(b, i & 31u);
  return (vec2<f32>(f32(w & 0xfu), f32((w >> 8u) & 0xfu)) - 8.0) * NAME_f16(b);
}
