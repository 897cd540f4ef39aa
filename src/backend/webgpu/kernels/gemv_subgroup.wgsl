// Matrix-vector product with subgroups: each subgroup owns one output row at a time, its lanes read consecutive
// words of that row (coalesced on GPUs, contiguous vector loads on CPU adapters) and subgroupAdd reduces them, so
// there is no shared memory and no barrier. A workgroup covers ROWS_PER_WG rows whatever the subgroup size.
// Same bindings, params and injected constants as gemv.wgsl.
enable subgroups;
// Every lane of a subgroup takes the same branches here (rows are per subgroup); the analysis cannot see that.
diagnostic(off, subgroup_uniformity);

struct Params { T: u32, K: u32, N: u32, n0: u32, nChunk: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, K)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, N)
@group(0) @binding(3) var<storage, read> residual: array<f32>; // (T, N)

const WG: u32 = 64u;
const ROWS_PER_WG: u32 = 16u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgSize: u32) {
  let t = wg.y;
  let K = params.K;
  let xBase = t * K;
  var scale = 1.0;
  if (HAS_NORM) {
    var ss = 0.0;
    for (var k = lane; k < K; k += sgSize) { let v = x[xBase + k]; ss += v * v; }
    scale = inverseSqrt(subgroupAdd(ss) / f32(K) + params.eps);
  }
  let nSubgroups = WG / sgSize;
  for (var r = lid / sgSize; r < ROWS_PER_WG; r += nSubgroups) {
    let row = wg.x * ROWS_PER_WG + r;
    if (row >= params.nChunk) { break; }
    let wBase = row * K;
    var acc = 0.0;
    var accUp = 0.0;
    if ((K & 1u) == 0u) {
      for (var k = 2u * lane; k < K; k += 2u * sgSize) {
        var xv = vec2<f32>(x[xBase + k], x[xBase + k + 1u]);
        if (HAS_NORM) { xv *= scale * vec2<f32>(norm_w_at(k), norm_w_at(k + 1u)); }
        acc += dot(xv, w_at2(wBase + k));
        if (GATE_UP) { accUp += dot(xv, w_up_at2(wBase + k)); }
      }
    } else {
      for (var k = lane; k < K; k += sgSize) {
        var xv = x[xBase + k];
        if (HAS_NORM) { xv *= scale * norm_w_at(k); }
        acc += xv * w_at(wBase + k);
        if (GATE_UP) { accUp += xv * w_up_at(wBase + k); }
      }
    }
    var v = subgroupAdd(acc);
    if (GATE_UP) {
      let u = subgroupAdd(accUp);
      v = v / (1.0 + exp(-v)) * u;
    }
    if (lane == 0u) {
      let n = params.n0 + row;
      if (HAS_BIAS) { v += bias_at(n); }
      if (HAS_RESIDUAL) { v += residual[t * params.N + n]; }
      y[t * params.N + n] = v;
    }
  }
}
