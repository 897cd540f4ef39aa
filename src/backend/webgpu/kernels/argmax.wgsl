// Row-wise argmax of (T, V) -> (T) i32; ties go to the lowest index, as in the CPU reference.
struct Params { T: u32, V: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (T, V)
@group(0) @binding(2) var<storage, read_write> y: array<i32>; // (T)

const WG: u32 = 256u;
var<workgroup> bestVal: array<f32, 256>;
var<workgroup> bestIdx: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let base = wg.x * params.V;
  var bv = -3.0e38;
  var bi = 0xffffffffu;
  for (var v = tid; v < params.V; v += WG) {
    let val = x[base + v];
    if (val > bv || bi == 0xffffffffu) { bv = val; bi = v; }
  }
  bestVal[tid] = bv;
  bestIdx[tid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) {
      let ov = bestVal[tid + s];
      let oi = bestIdx[tid + s];
      let mine = bestIdx[tid];
      if (oi != 0xffffffffu && (mine == 0xffffffffu || ov > bestVal[tid] || (ov == bestVal[tid] && oi < mine))) {
        bestVal[tid] = ov;
        bestIdx[tid] = oi;
      }
    }
    workgroupBarrier();
  }
  if (tid == 0u) { y[wg.x] = i32(bestIdx[0]); }
}
