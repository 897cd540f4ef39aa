// RMSNorm of each row: y[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w. One 256-thread workgroup per row.
// Injected: the weight binding norm_w (3).
struct Params { T: u32, D: u32, eps: f32, _a: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, D)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, D)

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let base = wg.x * params.D;
  var ss = 0.0;
  for (var d = tid; d < params.D; d += WG) { let v = x[base + d]; ss += v * v; }
  red[tid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let scale = inverseSqrt(red[0] / f32(params.D) + params.eps);
  for (var d = tid; d < params.D; d += WG) { y[base + d] = x[base + d] * scale * norm_w_at(d); }
}
