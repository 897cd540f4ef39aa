// Tiled matrix product for many rows (prefill): y (T, N) = norm?(x) (T, K) . W^T (+ bias) (+ residual), or with
// GATE_UP silu(x.Wg^T) * (x.Wu^T). A 16x16 workgroup computes a 32x32 output tile (2x2 per thread), staging
// 32x16 tiles of x and W in shared memory, so each weight element is read once per 32 tokens. Same bindings and
// injected constants as gemv.wgsl.
struct Params { T: u32, K: u32, N: u32, n0: u32, nChunk: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, K)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, N)
@group(0) @binding(3) var<storage, read> residual: array<f32>; // (T, N)

const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;
var<workgroup> xs: array<f32, 512>; // (TM, TK)
var<workgroup> ws: array<f32, 512>; // (TN, TK)
var<workgroup> wus: array<f32, 512>; // (TN, TK), GATE_UP only
var<workgroup> red: array<f32, 256>;
var<workgroup> rowScale: array<f32, 32>; // (TM) 1/rms of each x row

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let nTile = wg.x * TN; // chunk-local output row
  let tTile = wg.y * TM;
  let K = params.K;
  let T = params.T;
  if (HAS_NORM) {
    // 8 threads per x row: partial sums of squares, then lane 0 finishes the row.
    let r = tid / 8u;
    let lane = tid % 8u;
    var ss = 0.0;
    if (tTile + r < T) {
      let base = (tTile + r) * K;
      for (var k = lane; k < K; k += 8u) { let v = x[base + k]; ss += v * v; }
    }
    red[tid] = ss;
    workgroupBarrier();
    if (lane == 0u) {
      var sum = 0.0;
      for (var i = 0u; i < 8u; i++) { sum += red[tid + i]; }
      rowScale[r] = inverseSqrt(sum / f32(K) + params.eps);
    }
    workgroupBarrier();
  }
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var accUp = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var k0 = 0u; k0 < K; k0 += TK) {
    for (var e = 0u; e < 2u; e++) {
      let idx = tid + e * 256u;
      let r = idx / TK;
      let c = idx % TK;
      let k = k0 + c;
      var xv = 0.0;
      if (tTile + r < T && k < K) {
        xv = x[(tTile + r) * K + k];
        if (HAS_NORM) { xv = xv * rowScale[r] * norm_w_at(k); }
      }
      xs[idx] = xv;
      var wv = 0.0;
      var wuv = 0.0;
      if (nTile + r < params.nChunk && k < K) {
        wv = w_at((nTile + r) * K + k);
        if (GATE_UP) { wuv = w_up_at((nTile + r) * K + k); }
      }
      ws[idx] = wv;
      if (GATE_UP) { wus[idx] = wuv; }
    }
    workgroupBarrier();
    for (var c = 0u; c < TK; c++) {
      let a0 = xs[(lid.y * 2u) * TK + c];
      let a1 = xs[(lid.y * 2u + 1u) * TK + c];
      let b0 = ws[(lid.x * 2u) * TK + c];
      let b1 = ws[(lid.x * 2u + 1u) * TK + c];
      acc[0] += a0 * b0;
      acc[1] += a0 * b1;
      acc[2] += a1 * b0;
      acc[3] += a1 * b1;
      if (GATE_UP) {
        let u0 = wus[(lid.x * 2u) * TK + c];
        let u1 = wus[(lid.x * 2u + 1u) * TK + c];
        accUp[0] += a0 * u0;
        accUp[1] += a0 * u1;
        accUp[2] += a1 * u0;
        accUp[3] += a1 * u1;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let t = tTile + lid.y * 2u + i / 2u;
    let nl = nTile + lid.x * 2u + i % 2u;
    if (t < T && nl < params.nChunk) {
      let n = params.n0 + nl;
      var v = acc[i];
      if (GATE_UP) { v = v / (1.0 + exp(-v)) * accUp[i]; }
      if (HAS_BIAS) { v += bias_at(n); }
      if (HAS_RESIDUAL) { v += residual[t * params.N + n]; }
      y[t * params.N + n] = v;
    }
  }
}
