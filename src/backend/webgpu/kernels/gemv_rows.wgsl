// Matrix-vector product, one invocation per output row and no shared memory or barriers: the shape that is fast
// on CPU-backed WebGPU (SwiftShader runs barriers as coroutine switches, and each thread streams its own row).
// Same bindings, params and injected constants as gemv.wgsl.
struct Params { T: u32, K: u32, N: u32, n0: u32, nChunk: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, K)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, N)
@group(0) @binding(3) var<storage, read> residual: array<f32>; // (T, N)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let t = gid.y;
  if (row >= params.nChunk) { return; }
  let K = params.K;
  let xBase = t * K;
  var scale = 1.0;
  if (HAS_NORM) {
    var ss = 0.0;
    for (var k = 0u; k < K; k++) { let v = x[xBase + k]; ss += v * v; }
    scale = inverseSqrt(ss / f32(K) + params.eps);
  }
  let wBase = row * K;
  var acc = vec2<f32>(0.0);
  var accUp = vec2<f32>(0.0);
  if ((K & 1u) == 0u) {
    for (var k = 0u; k < K; k += 2u) {
      var xv = vec2<f32>(x[xBase + k], x[xBase + k + 1u]);
      if (HAS_NORM) { xv *= scale * vec2<f32>(norm_w_at(k), norm_w_at(k + 1u)); }
      acc += xv * w_at2(wBase + k);
      if (GATE_UP) { accUp += xv * w_up_at2(wBase + k); }
    }
  } else {
    for (var k = 0u; k < K; k++) {
      var xv = x[xBase + k];
      if (HAS_NORM) { xv *= scale * norm_w_at(k); }
      acc.x += xv * w_at(wBase + k);
      if (GATE_UP) { accUp.x += xv * w_up_at(wBase + k); }
    }
  }
  let n = params.n0 + row;
  var v = acc.x + acc.y;
  if (GATE_UP) {
    let u = accUp.x + accUp.y;
    v = v / (1.0 + exp(-v)) * u;
  }
  if (HAS_BIAS) { v += bias_at(n); }
  if (HAS_RESIDUAL) { v += residual[t * params.N + n]; }
  y[t * params.N + n] = v;
}
