// Weight binding `NAME` in Q8_0 blocks, the file's 34-byte blocks as they are (f16 d, then 32 x i8; value d*q),
// read as u32 words with byte shifts: see docs/gguf.md for why the bytes are not repacked. Every byte pair read
// here starts at an even offset (34 * block + 2 + even), so it never straddles two words.
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
// The f16 scale at even byte offset o, widened without the shader-f16 feature.
fn NAME_f16(o: u32) -> f32 { return unpack2x16float(NAME[o >> 2u] >> ((o & 2u) * 8u)).x; }
fn NAME_at(i: u32) -> f32 {
  let b = (i >> 5u) * 34u;
  let o = b + 2u + (i & 31u);
  // Signed extractBits sign-extends the i8.
  return NAME_f16(b) * f32(extractBits(bitcast<i32>(NAME[o >> 2u]), (o & 3u) * 8u, 8u));
}
// i must be even.
fn NAME_at2(i: u32) -> vec2<f32> {
  let b = (i >> 5u) * 34u;
  let o = b + 2u + (i & 31u);
  let w = bitcast<i32>(NAME[o >> 2u]);
  let s = (o & 3u) * 8u;
  return NAME_f16(b) * vec2<f32>(f32(extractBits(w, s, 8u)), f32(extractBits(w, s + 8u, 8u)));
}
