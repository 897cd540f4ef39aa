// Embedding gather: y[t, d] = table[ids[t], d] for the ids that fall in this chunk of table rows
// [rowStart, rowStart + rows); a table split across bindings takes one dispatch per chunk.
// Injected: the weight binding table (3).
struct Params { T: u32, dim: u32, rowStart: u32, rows: u32, wgPerRow: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>; // (T)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (T, dim)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let flat = wg.x + wg.y * nwg.x;
  let i = flat * 256u + tid;
  if (i >= params.T * params.dim) { return; }
  let t = i / params.dim;
  let d = i % params.dim;
  let id = ids[t];
  if (id < i32(params.rowStart) || id >= i32(params.rowStart + params.rows)) { return; }
  y[i] = table_at((u32(id) - params.rowStart) * params.dim + d);
}
