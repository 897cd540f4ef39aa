// Weight binding `NAME` stored as f16 pairs in u32 words, unpacked without the shader-f16 feature.
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
fn NAME_at(i: u32) -> f32 { return unpack2x16float(NAME[i >> 1u])[i & 1u]; }
// i must be even: both halves of one word (little-endian: element i is the low half).
fn NAME_at2(i: u32) -> vec2<f32> { return unpack2x16float(NAME[i >> 1u]); }
