// Attention inputs for positions pos0 .. pos0+T-1: optional per-head RMSNorm of q and k (qwen3), RoPE in the
// Hugging Face rotate_half convention, then k and v written into cache rows pos0... The cos/sin table is
// computed on the host in f64 from the given inverse frequencies, so no GPU trig precision is involved.
// One workgroup per (head, token): heads [0, nHeads) are query heads, [nHeads, nHeads + nKvHeads) KV heads.
// Injected: HAS_QKNORM and the weight bindings q_norm (7), k_norm (8).
struct Params { T: u32, pos0: u32, nHeads: u32, nKvHeads: u32, headDim: u32, kvDim: u32, vOffset: u32, eps: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (T, nHeads * headDim)
@group(0) @binding(2) var<storage, read> k: array<f32>; // (T, kvDim)
@group(0) @binding(3) var<storage, read> v: array<f32>; // (T, kvDim)
@group(0) @binding(4) var<storage, read_write> qOut: array<f32>; // (T, nHeads * headDim)
@group(0) @binding(5) var<storage, read_write> cache: array<f32>; // K (maxSeq, kvDim) then V (maxSeq, kvDim)
@group(0) @binding(6) var<storage, read> cosSin: array<f32>; // (T, headDim / 2, 2)

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let t = wg.y;
  let hd = params.headDim;
  let half = hd / 2u;
  let isQ = h < params.nHeads;
  let kvh = h - select(params.nHeads, 0u, isQ);
  var src = t * params.kvDim + kvh * hd;
  if (isQ) { src = t * params.nHeads * hd + h * hd; }
  var scale = 1.0;
  if (HAS_QKNORM) {
    var ss = 0.0;
    for (var d = tid; d < hd; d += WG) {
      var val = 0.0;
      if (isQ) { val = q[src + d]; } else { val = k[src + d]; }
      ss += val * val;
    }
    red[tid] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (tid < s) { red[tid] += red[tid + s]; }
      workgroupBarrier();
    }
    scale = inverseSqrt(red[0] / f32(hd) + params.eps);
  }
  let row = params.pos0 + t;
  let dst = row * params.kvDim + kvh * hd;
  for (var i = tid; i < half; i += WG) {
    var a = 0.0;
    var b = 0.0;
    if (isQ) { a = q[src + i]; b = q[src + i + half]; } else { a = k[src + i]; b = k[src + i + half]; }
    if (HAS_QKNORM) {
      if (isQ) { a *= scale * q_norm_at(i); b *= scale * q_norm_at(i + half); }
      else { a *= scale * k_norm_at(i); b *= scale * k_norm_at(i + half); }
    }
    let c = cosSin[(t * half + i) * 2u];
    let s = cosSin[(t * half + i) * 2u + 1u];
    let ra = a * c - b * s;
    let rb = b * c + a * s;
    if (isQ) {
      qOut[src + i] = ra;
      qOut[src + i + half] = rb;
    } else {
      cache[dst + i] = ra;
      cache[dst + i + half] = rb;
    }
  }
  if (!isQ) {
    for (var d = tid; d < hd; d += WG) { cache[params.vOffset + dst + d] = v[src + d]; }
  }
}
