// Matrix-vector product for few rows (decode): y[t, n0+n] = norm?(x[t]) . W[n] (+ bias) (+ residual), or with
// GATE_UP silu(x.Wg[n]) * (x.Wu[n]). One workgroup computes ROWS outputs of one token; threads stride over K so
// the weight rows are read coalesced, then a shared-memory tree reduction. Injected: HAS_NORM, HAS_BIAS,
// HAS_RESIDUAL, GATE_UP and the weight bindings w (4), w_up (5), bias (6), norm_w (7).
struct Params { T: u32, K: u32, N: u32, n0: u32, nChunk: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, K)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, N)
@group(0) @binding(3) var<storage, read> residual: array<f32>; // (T, N)

const WG: u32 = 64u;
const ROWS: u32 = 4u;
var<workgroup> red: array<f32, 512>; // (2 * ROWS, WG): gate and up partial sums

fn xn(xBase: u32, k: u32, scale: f32) -> f32 {
  if (HAS_NORM) { return x[xBase + k] * scale * norm_w_at(k); }
  return x[xBase + k];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.y;
  let nBase = wg.x * ROWS;
  let K = params.K;
  let xBase = t * K;
  var scale = 1.0;
  if (HAS_NORM) {
    var ss = 0.0;
    for (var k = tid; k < K; k += WG) { let v = x[xBase + k]; ss += v * v; }
    red[tid] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (tid < s) { red[tid] += red[tid + s]; }
      workgroupBarrier();
    }
    scale = inverseSqrt(red[0] / f32(K) + params.eps);
    workgroupBarrier();
  }
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var accUp = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  let last = params.nChunk - 1u;
  if ((K & 1u) == 0u) {
    // Even K: every row starts on a word boundary, so 16-bit weights come two per load.
    for (var k = 2u * tid; k < K; k += 2u * WG) {
      let xv = vec2<f32>(xn(xBase, k, scale), xn(xBase, k + 1u, scale));
      for (var r = 0u; r < ROWS; r++) {
        let base = min(nBase + r, last) * K + k;
        acc[r] += dot(xv, w_at2(base));
        if (GATE_UP) { accUp[r] += dot(xv, w_up_at2(base)); }
      }
    }
  } else {
    for (var k = tid; k < K; k += WG) {
      let xv = xn(xBase, k, scale);
      for (var r = 0u; r < ROWS; r++) {
        let base = min(nBase + r, last) * K + k;
        acc[r] += xv * w_at(base);
        if (GATE_UP) { accUp[r] += xv * w_up_at(base); }
      }
    }
  }
  for (var r = 0u; r < ROWS; r++) {
    red[r * WG + tid] = acc[r];
    red[(ROWS + r) * WG + tid] = accUp[r];
  }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) {
      for (var i = 0u; i < 2u * ROWS; i++) { red[i * WG + tid] += red[i * WG + tid + s]; }
    }
    workgroupBarrier();
  }
  if (tid < ROWS && nBase + tid < params.nChunk) {
    let n = params.n0 + nBase + tid;
    var v = red[tid * WG];
    if (GATE_UP) {
      let u = red[(ROWS + tid) * WG];
      v = v / (1.0 + exp(-v)) * u;
    }
    if (HAS_BIAS) { v += bias_at(n); }
    if (HAS_RESIDUAL) { v += residual[t * params.N + n]; }
    y[t * params.N + n] = v;
  }
}
