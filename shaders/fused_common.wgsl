//!fragment: compiled only inside the fused kernels that include it.
// Uniforms, bindings, widths and helpers shared by the fused many-steps-per-dispatch SGD kernels:
// fused_deep_linear.wgsl (generic), fused_deep_linear_narrow.wgsl and fused_mlp_narrow.wgsl
// (every width ≤ 4, layers as zero-padded mat4x4) and fused_deep_linear_2x2.wgsl (widths ≤ 2).
//
// Parameters are packed layer-major: layer l occupies [replicas, h_{l+1} · h_l] (row-major) starting
// at replicas · (Σ_{j<l} h_{j+1} · h_j), i.e. the engine's layer tensors laid end to end.

//!include philox.wgsl

const STREAM_INPUTS = 1u;
const STREAM_LABEL_NOISE = 2u;

struct Params {
  replicas: u32,
  depth: u32,
  batchSize: u32,
  steps: u32,
  stepLo: u32,        // first step of this dispatch (low and high 32 bits)
  stepHi: u32,
  seed: u32,
  replicaOffset: u32,
  learningRate: f32,
  rootXStride: u32,   // d·d when each replica has its own Σ_x root, 0 when shared
  rootEpsStride: u32, // m·m likewise for Σ_ε (groups with different noise trained as one batch)
  widths0: vec4<u32>, // h_0 = d, h_1, …, h_depth = m (up to 12 entries)
  widths1: vec4<u32>,
  widths2: vec4<u32>,
}

@group(0) @binding(0) var<storage, read_write> weights: array<f32>;
@group(0) @binding(1) var<storage, read> rootX: array<f32>;    // d×d per replica (or shared), S Sᵀ = Σ_x
@group(0) @binding(2) var<storage, read> rootEps: array<f32>;  // m×m per replica (or shared), S Sᵀ = Σ_ε
@group(0) @binding(3) var<storage, read> teacher: array<f32>;  // V, m×d
@group(0) @binding(4) var<storage, read_write> lastLoss: array<f32>; // minibatch loss of the last step, per replica
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 64u;
// Input and output widths d and m of the narrow kernels (compile-time; the generic one reads widths).
override IN: u32 = 2u;
override OUT: u32 = 2u;

fn width(l: u32) -> u32 {
  if (l < 4u) {
    return params.widths0[l];
  }
  if (l < 8u) {
    return params.widths1[l - 4u];
  }
  return params.widths2[l - 8u];
}

// Row-major rows×cols matrix at `base` of a storage array, as a zero-padded column-major mat4x4.
fn load_rows(rows: u32, cols: u32, value: ptr<function, array<f32, 16>>) -> mat4x4<f32> {
  var m = mat4x4<f32>();
  for (var i = 0u; i < rows; i += 1u) {
    for (var j = 0u; j < cols; j += 1u) {
      m[j][i] = (*value)[i * cols + j];
    }
  }
  return m;
}

// The general path draws an [rows, n] normal tensor per stream and step; element i is lane i % 4 of
// Philox block i / 4. Samples are read in order, so keeping the last block per stream computes each
// block once (reset both caches at every step: block indices restart at 0).
var<private> cachedInputBlock: u32;
var<private> cachedInputNormals: vec4<f32>;
var<private> cachedNoiseBlock: u32;
var<private> cachedNoiseNormals: vec4<f32>;

fn block_normals(stream: u32, step: vec2<u32>, replica: u32, blockIndex: u32) -> vec4<f32> {
  if (stream == STREAM_INPUTS) {
    if (cachedInputBlock != blockIndex) {
      cachedInputBlock = blockIndex;
      cachedInputNormals = box_muller(philox(vec4<u32>(blockIndex, replica, step.x, step.y), vec2<u32>(params.seed, stream)));
    }
    return cachedInputNormals;
  }
  if (cachedNoiseBlock != blockIndex) {
    cachedNoiseBlock = blockIndex;
    cachedNoiseNormals = box_muller(philox(vec4<u32>(blockIndex, replica, step.x, step.y), vec2<u32>(params.seed, stream)));
  }
  return cachedNoiseNormals;
}

// Element i of the stream's normal tensor.
fn element_normal(stream: u32, step: vec2<u32>, replica: u32, i: u32) -> f32 {
  return block_normals(stream, step, replica, i / 4u)[i % 4u];
}

// Elements first … first + count − 1 of the stream's normal tensor, zero-padded to a vec4.
fn normals(stream: u32, step: vec2<u32>, replica: u32, first: u32, count: u32) -> vec4<f32> {
  var out = vec4<f32>(0.0);
  for (var j = 0u; j < count; j += 1u) {
    let i = first + j;
    out[j] = element_normal(stream, step, replica, i);
  }
  return out;
}

// A stream's normal tensor read in order, `width` elements per sample, each Philox block made once:
// the block being read, the lane the next sample starts at, and that block's normals. For widths
// that divide 4 (1, 2, 4) a sample never straddles two blocks, so no index is divided and no block
// cache is consulted; on SwiftShader this ran the narrow deep linear kernel 1.4–1.5× faster than
// `normals` (same numbers).
struct NormalCursor {
  block: u32,
  lane: u32,
  values: vec4<f32>,
}

fn next_normals(stream: u32, step: vec2<u32>, replica: u32, width: u32, cursor: ptr<function, NormalCursor>) -> vec4<f32> {
  if ((*cursor).lane == 0u) {
    (*cursor).values = box_muller(philox(vec4<u32>((*cursor).block, replica, step.x, step.y), vec2<u32>(params.seed, stream)));
  }
  let z = (*cursor).values;
  var out: vec4<f32>;
  if (width == 4u) {
    out = z;
  } else if (width == 2u) {
    out = select(vec4<f32>(z.xy, 0.0, 0.0), vec4<f32>(z.zw, 0.0, 0.0), (*cursor).lane == 2u);
  } else {
    out = vec4<f32>(z[(*cursor).lane], 0.0, 0.0, 0.0);
  }
  (*cursor).lane += width;
  if ((*cursor).lane == 4u) {
    (*cursor).lane = 0u;
    (*cursor).block += 1u;
  }
  return out;
}

// Sample b's `width` normals of a stream, zero-padded: through the cursor when the width divides 4,
// else element by element (`normals`; the block caches must be reset at every step).
fn sample_normals(stream: u32, step: vec2<u32>, replica: u32, b: u32, width: u32, cursor: ptr<function, NormalCursor>) -> vec4<f32> {
  if (width == 1u || width == 2u || width == 4u) {
    return next_normals(stream, step, replica, width, cursor);
  }
  return normals(stream, step, replica, b * width, width);
}

fn outer(column: vec4<f32>, row: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(column * row.x, column * row.y, column * row.z, column * row.w);
}

// This replica's data-generating roots, zero-padded: x = S_x z and ε = S_ε e (narrow kernels).
fn root_x(replica: u32) -> mat4x4<f32> {
  var scratch: array<f32, 16>;
  for (var k = 0u; k < IN * IN; k += 1u) {
    scratch[k] = rootX[replica * params.rootXStride + k];
  }
  return load_rows(IN, IN, &scratch);
}

fn root_eps(replica: u32) -> mat4x4<f32> {
  var scratch: array<f32, 16>;
  for (var k = 0u; k < OUT * OUT; k += 1u) {
    scratch[k] = rootEps[replica * params.rootEpsStride + k];
  }
  return load_rows(OUT, OUT, &scratch);
}
