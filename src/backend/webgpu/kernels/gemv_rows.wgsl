// Matrix product for CPU-backed WebGPU (SwiftShader, lavapipe): one invocation per output row and per block of
// TB tokens, no shared memory and no barriers (SwiftShader runs barriers as coroutine switches). Each weight word
// is loaded once per block and used for TB tokens, so prefill reads the weights T/TB times, decode once.
// Same bindings, params and injected constants as gemv.wgsl; grid (ceil(nChunk / 64), ceil(T / TB)).
struct Params { T: u32, K: u32, N: u32, n0: u32, nChunk: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, K)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, N)
@group(0) @binding(3) var<storage, read> residual: array<f32>; // (T, N)

const TB: u32 = 8u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= params.nChunk) { return; }
  let K = params.K;
  let t0 = gid.y * TB;
  let nt = min(TB, params.T - t0);
  var scale = array<f32, 8>(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0);
  if (HAS_NORM) {
    for (var tt = 0u; tt < nt; tt++) {
      var ss = 0.0;
      let xb = (t0 + tt) * K;
      for (var k = 0u; k < K; k++) { let v = x[xb + k]; ss += v * v; }
      scale[tt] = inverseSqrt(ss / f32(K) + params.eps);
    }
  }
  let wBase = row * K;
  var acc = array<vec2<f32>, 8>();
  var accUp = array<vec2<f32>, 8>();
  if ((K & 1u) == 0u) {
    for (var k = 0u; k < K; k += 2u) {
      let w = w_at2(wBase + k);
      var wu = vec2<f32>(0.0);
      if (GATE_UP) { wu = w_up_at2(wBase + k); }
      var nw = vec2<f32>(1.0);
      if (HAS_NORM) { nw = vec2<f32>(norm_w_at(k), norm_w_at(k + 1u)); }
      for (var tt = 0u; tt < nt; tt++) {
        let xb = (t0 + tt) * K + k;
        var xv = vec2<f32>(x[xb], x[xb + 1u]);
        if (HAS_NORM) { xv *= scale[tt] * nw; }
        acc[tt] += xv * w;
        if (GATE_UP) { accUp[tt] += xv * wu; }
      }
    }
  } else {
    for (var k = 0u; k < K; k++) {
      let w = w_at(wBase + k);
      var wu = 0.0;
      if (GATE_UP) { wu = w_up_at(wBase + k); }
      var nw = 1.0;
      if (HAS_NORM) { nw = norm_w_at(k); }
      for (var tt = 0u; tt < nt; tt++) {
        var xv = x[(t0 + tt) * K + k];
        if (HAS_NORM) { xv *= scale[tt] * nw; }
        acc[tt].x += xv * w;
        if (GATE_UP) { accUp[tt].x += xv * wu; }
      }
    }
  }
  let n = params.n0 + row;
  for (var tt = 0u; tt < nt; tt++) {
    let t = t0 + tt;
    var v = acc[tt].x + acc[tt].y;
    if (GATE_UP) {
      let u = accUp[tt].x + accUp[tt].y;
      v = v / (1.0 + exp(-v)) * u;
    }
    if (HAS_BIAS) { v += bias_at(n); }
    if (HAS_RESIDUAL) { v += residual[t * params.N + n]; }
    y[t * params.N + n] = v;
  }
}
