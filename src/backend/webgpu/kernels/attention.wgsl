// Causal grouped-query attention over the KV cache, prefill and decode alike: query t (position pos0 + t) of head
// h attends to cache rows [0, pos0 + t] of KV head h / (nHeads / nKvHeads). One workgroup per (head, token) runs
// an online softmax over blocks of 64 keys (one key per thread for the scores, then each thread owns up to 4 of
// the headDim output columns), so the sequence length is not limited by shared memory.
struct Params { T: u32, pos0: u32, nHeads: u32, nKvHeads: u32, headDim: u32, kvDim: u32, vOffset: u32, scale: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (T, nHeads * headDim)
@group(0) @binding(2) var<storage, read> cache: array<f32>; // K (maxSeq, kvDim) then V (maxSeq, kvDim)
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // (T, nHeads * headDim)

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
var<workgroup> qs: array<f32, 256>; // (headDim) scaled query
var<workgroup> p: array<f32, 64>; // scores, then probabilities, of one block of keys
var<workgroup> red: array<f32, 64>;

fn reduceMax(tid: u32, val: f32) -> f32 {
  red[tid] = val;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(tid: u32, val: f32) -> f32 {
  red[tid] = val;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let t = wg.y;
  let hd = params.headDim;
  let kvh = h / (params.nHeads / params.nKvHeads);
  let kvCol = kvh * hd;
  let qBase = t * params.nHeads * hd + h * hd;
  for (var d = tid; d < hd; d += WG) { qs[d] = q[qBase + d] * params.scale; }
  workgroupBarrier();
  let nKeys = params.pos0 + t + 1u;
  var m = -3.0e38;
  var l = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var j0 = 0u; j0 < nKeys; j0 += WG) {
    let j = j0 + tid;
    var s = -3.0e38;
    if (j < nKeys) {
      let kb = j * params.kvDim + kvCol;
      var dotv = 0.0;
      for (var d = 0u; d < hd; d++) { dotv += qs[d] * cache[kb + d]; }
      s = dotv;
    }
    let mNew = max(m, reduceMax(tid, s));
    let alpha = exp(m - mNew);
    var pj = 0.0;
    if (j < nKeys) { pj = exp(s - mNew); }
    p[tid] = pj;
    l = l * alpha + reduceSum(tid, pj); // reduceSum's barriers also publish p[]
    let nb = min(WG, nKeys - j0);
    for (var i = 0u; i < 4u; i++) {
      let d = tid + i * WG;
      if (d < hd) {
        var a = acc[i] * alpha;
        let vb = params.vOffset + j0 * params.kvDim + kvCol + d;
        for (var jj = 0u; jj < nb; jj++) { a += p[jj] * cache[vb + jj * params.kvDim]; }
        acc[i] = a;
      }
    }
    m = mNew;
    workgroupBarrier(); // p[] is rewritten by the next block
  }
  for (var i = 0u; i < 4u; i++) {
    let d = tid + i * WG;
    if (d < hd) { y[qBase + d] = acc[i] / l; }
  }
}
