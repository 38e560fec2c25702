// Lanczos with full reorthogonalisation, and power iteration, for every replica at once.
//
// Each replica b keeps its Krylov basis as rows of one [capacity, n] block:
//   basis[b · basisBatch + j · n + i] = (q_j)_i.
// A Lanczos step on w = H q_j is: project (c = Qᵀw over rows 0..j), subtract (w −= Q c), again
// (classical Gram–Schmidt twice), then finish: α_j = c_j + c'_j, β_j = ‖w‖, q_{j+1} = w / β_j.
// The scalars go to `scalars` ([2] per replica: α, β) and are the only values read back per step.

struct BasisParams {
  n: u32,           // vector length per replica
  rows: u32,        // basis rows in use (project/subtract over rows 0..rows−1)
  batch: u32,
  basisBatch: u32,  // elements between replicas of the basis (capacity · n)
  coefBatch: u32,   // elements between replicas of coef
  coefOffset: u32,  // where this pass's coefficients start within a replica's coef
  row: u32,         // finish/normalize: the basis row written (q_{j+1}); finish: α is at coef[row − 1]
  writeRow: u32,    // finish: 0 when the basis is full (only α and β are produced)
  secondPass: u32,  // finish: offset of the second pass's coefficients (α = c[j] + c[secondPass + j])
  masked: u32,      // normalize: 1 = only replicas with mask[b] ≠ 0 write their row
  rowStride: u32,   // subtract: invocations per dispatch row
}

struct PowerParams {
  n: u32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> basis: array<f32>;
@group(0) @binding(1) var<storage, read_write> basisOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> coef: array<f32>;
@group(0) @binding(4) var<storage, read_write> scalars: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<u32>;
@group(0) @binding(6) var<storage, read> hv: array<f32>;
@group(0) @binding(7) var<uniform> basisParams: BasisParams;
@group(0) @binding(8) var<uniform> powerParams: PowerParams;

override WG: u32 = 64u;

// Breakdown guard: a vector this small is written as zeros instead of w / ‖w‖.
const TINY = 1e-30;

var<workgroup> partial: array<f32, WG>;

fn workgroup_sum(local: u32, value: f32) -> f32 {
  workgroupBarrier();
  partial[local] = value;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (local < half) {
      partial[local] += partial[local + half];
    }
    workgroupBarrier();
  }
  return partial[0];
}

// coef[b · coefBatch + coefOffset + j] = ⟨q_j, w_b⟩, one workgroup per (row j, replica b).
@compute @workgroup_size(WG, 1, 1)
fn project(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = wid.x;
  let b = wid.y;
  let q = b * basisParams.basisBatch + j * basisParams.n;
  let v = b * basisParams.n;
  var acc = 0.0;
  for (var i = lid.x; i < basisParams.n; i += WG) {
    acc += basis[q + i] * w[v + i];
  }
  let total = workgroup_sum(lid.x, acc);
  if (lid.x == 0u) {
    coef[b * basisParams.coefBatch + basisParams.coefOffset + j] = total;
  }
}

// The same with one invocation per (row j, replica b) and a serial loop: short vectors, where a
// workgroup per output would mostly idle (and barriers are costly on CPU adapters).
@compute @workgroup_size(WG, 1, 1)
fn project_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.y * basisParams.rowStride + gid.x;
  if (index >= basisParams.rows * basisParams.batch) {
    return;
  }
  let b = index / basisParams.rows;
  let j = index % basisParams.rows;
  let q = b * basisParams.basisBatch + j * basisParams.n;
  let v = b * basisParams.n;
  var acc = 0.0;
  for (var i = 0u; i < basisParams.n; i += 1u) {
    acc += basis[q + i] * w[v + i];
  }
  coef[b * basisParams.coefBatch + basisParams.coefOffset + j] = acc;
}

// w_b −= Σ_{j < rows} coef[b, j] · q_j, one invocation per element.
@compute @workgroup_size(WG, 1, 1)
fn subtract(@builtin(global_invocation_id) gid: vec3<u32>) {
  let index = gid.y * basisParams.rowStride + gid.x;
  if (index >= basisParams.n * basisParams.batch) {
    return;
  }
  let b = index / basisParams.n;
  let i = index % basisParams.n;
  let c = b * basisParams.coefBatch + basisParams.coefOffset;
  let q = b * basisParams.basisBatch + i;
  var acc = 0.0;
  for (var j = 0u; j < basisParams.rows; j += 1u) {
    acc += coef[c + j] * basis[q + j * basisParams.n];
  }
  w[index] -= acc;
}

// One workgroup per replica: α_j, β_j = ‖w‖ into scalars, and q_{j+1} = w / β_j into basis row `row`.
@compute @workgroup_size(WG, 1, 1)
fn finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  let v = b * basisParams.n;
  var acc = 0.0;
  for (var i = lid.x; i < basisParams.n; i += WG) {
    acc += w[v + i] * w[v + i];
  }
  let beta = sqrt(workgroup_sum(lid.x, acc));
  if (lid.x == 0u) {
    let c = b * basisParams.coefBatch + basisParams.row - 1u;
    scalars[2u * b] = coef[c] + coef[c + basisParams.secondPass];
    scalars[2u * b + 1u] = beta;
  }
  if (basisParams.writeRow != 0u) {
    let scale = select(0.0, 1.0 / beta, beta > TINY);
    let q = b * basisParams.basisBatch + basisParams.row * basisParams.n;
    for (var i = lid.x; i < basisParams.n; i += WG) {
      basisOut[q + i] = w[v + i] * scale;
    }
  }
}

// One workgroup per replica: basis row `row` = w / ‖w‖ (start vectors and restarts after breakdown).
@compute @workgroup_size(WG, 1, 1)
fn normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  let v = b * basisParams.n;
  var acc = 0.0;
  for (var i = lid.x; i < basisParams.n; i += WG) {
    acc += w[v + i] * w[v + i];
  }
  let norm = sqrt(workgroup_sum(lid.x, acc));
  if (basisParams.masked != 0u && mask[b] == 0u) {
    return;
  }
  let scale = select(0.0, 1.0 / norm, norm > TINY);
  let q = b * basisParams.basisBatch + basisParams.row * basisParams.n;
  for (var i = lid.x; i < basisParams.n; i += WG) {
    basisOut[q + i] = w[v + i] * scale;
  }
}

// Power iteration, one workgroup per replica, with v a unit vector and hv = H v:
// scalars[3b..3b+2] = (λ = ⟨v, Hv⟩, ‖Hv − λ v‖, ‖Hv‖), then v ← Hv / ‖Hv‖ in place.
@compute @workgroup_size(WG, 1, 1)
fn power_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wid.x;
  let base = b * powerParams.n;
  var vh = 0.0;
  var hh = 0.0;
  for (var i = lid.x; i < powerParams.n; i += WG) {
    let h = hv[base + i];
    vh += w[base + i] * h;
    hh += h * h;
  }
  let lambda = workgroup_sum(lid.x, vh);
  let norm = sqrt(workgroup_sum(lid.x, hh));
  var rr = 0.0;
  for (var i = lid.x; i < powerParams.n; i += WG) {
    let r = hv[base + i] - lambda * w[base + i];
    rr += r * r;
  }
  let residual = sqrt(workgroup_sum(lid.x, rr));
  if (lid.x == 0u) {
    scalars[3u * b] = lambda;
    scalars[3u * b + 1u] = residual;
    scalars[3u * b + 2u] = norm;
  }
  let scale = select(0.0, 1.0 / norm, norm > TINY);
  for (var i = lid.x; i < powerParams.n; i += WG) {
    w[base + i] = hv[base + i] * scale;
  }
}
