// Weight binding `NAME` stored as bf16 pairs in u32 words: a bf16 is the top half of an f32, so shift it into place.
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
fn NAME_at(i: u32) -> f32 {
  let w = NAME[i >> 1u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
}
// i must be even: both halves of one word (little-endian: element i is the low half).
fn NAME_at2(i: u32) -> vec2<f32> {
  let w = NAME[i >> 1u];
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}
