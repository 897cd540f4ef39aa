// Weight binding `NAME` in Q6_K super-blocks of 256 values, the file's 210-byte blocks as they are: ql[128] (low 4
// bits), qh[64] (high 2 bits), 16 x i8 scales (one per 16 values), f16 d; value d*sc*(q-32). Read as u32 words
// with byte shifts (docs/gguf.md). Each half of 128 values is four quarters of 32: quarter qd takes the low (qd<2)
// or high nibble of ql[64h + 32(qd&1) + l] and bits 2qd..2qd+1 of qh[32h + l].
@group(0) @binding(BINDING) var<storage, read> NAME: array<u32>;
// The word holding byte o, shifted so that byte is the lowest.
fn NAME_word(o: u32) -> u32 { return NAME[o >> 2u] >> ((o & 3u) * 8u); }
// d*sc for value v of the block at byte b: exact in f32 (11-bit by 8-bit), so d*sc*q rounds once as on the CPU.
fn NAME_scale(b: u32, v: u32) -> f32 {
  let h = v >> 7u;
  let r = v & 127u;
  let s = b + 192u + 8u * h + ((r & 31u) >> 4u) + 2u * (r >> 5u);
  let sc = extractBits(bitcast<i32>(NAME[s >> 2u]), (s & 3u) * 8u, 8u);
  let d = unpack2x16float(NAME[(b + 208u) >> 2u] >> (((b + 208u) & 2u) * 8u)).x;
  return d * f32(sc);
}
// The two words holding value v's low and high bits, shifted so v's bits are the lowest of each.
fn NAME_q(b: u32, v: u32) -> vec2<u32> {
  let h = v >> 7u;
  let qd = (v & 127u) >> 5u;
  let l = v & 31u;
  let lo = NAME_word(b + 64u * h + 32u * (qd & 1u) + l) >> (4u * (qd >> 1u));
  let hi = NAME_word(b + 128u + 32u * h + l) >> (2u * qd);
  return vec2<u32>(lo, hi);
}
fn NAME_at(i: u32) -> f32 {
  let b = (i >> 8u) * 210u;
  let v = i & 255u;
  let w = NAME_q(b, v);
  let q = i32((w.x & 0xfu) | ((w.y & 3u) << 4u)) - 32;
  return NAME_scale(b, v) * f32(q);
}
// i must be even: values v and v+1 share a scale and sit in adjacent bytes at even offsets (one word each).
fn NAME_at2(i: u32) -> vec2<f32> {
  let b = (i >> 8u) * 210u;
  let v = i & 255u;
  let w = NAME_q(b, v);
  let q0 = i32((w.x & 0xfu) | ((w.y & 3u) << 4u)) - 32;
  let q1 = i32(((w.x >> 8u) & 0xfu) | (((w.y >> 8u) & 3u) << 4u)) - 32;
  return NAME_scale(b, v) * vec2<f32>(f32(q0), f32(q1));
}
