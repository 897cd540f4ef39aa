// Profiling kernels on the model's own shapes. Weights in Hugging Face layout: W is (cols, inner), row-major.
// matmul: C(rows, cols) = A(rows, inner) x W^T, 16x16 output tiles through workgroup memory.
// gemv:   y(cols) = W x, one invocation per output (the decode step's shape).

struct Dims { rows: u32, inner: u32, cols: u32, pad: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 16u;
var<workgroup> tileA: array<array<f32, 16>, 16>;
var<workgroup> tileW: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.y * TILE + lid.y;
  let col = wid.x * TILE + lid.x;
  var acc = 0.0;
  let nTiles = (dims.inner + TILE - 1u) / TILE;
  for (var t = 0u; t < nTiles; t++) {
    let k = t * TILE;
    let ka = k + lid.x;
    tileA[lid.y][lid.x] = select(0.0, a[row * dims.inner + ka], row < dims.rows && ka < dims.inner);
    let wRow = wid.x * TILE + lid.y;
    tileW[lid.y][lid.x] = select(0.0, w[wRow * dims.inner + ka], wRow < dims.cols && ka < dims.inner);
    workgroupBarrier();
    for (var i = 0u; i < TILE; i++) {
      acc += tileA[lid.y][i] * tileW[lid.x][i];
    }
    workgroupBarrier();
  }
  if (row < dims.rows && col < dims.cols) {
    c[row * dims.cols + col] = acc;
  }
}

@compute @workgroup_size(64)
fn gemv(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= dims.cols) { return; }
  var acc = 0.0;
  let base = col * dims.inner;
  for (var k = 0u; k < dims.inner; k++) {
    acc += w[base + k] * a[k];
  }
  c[col] = acc;
}
