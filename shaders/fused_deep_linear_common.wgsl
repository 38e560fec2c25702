// Uniforms, bindings and layer widths shared by the fused deep-linear SGD kernels
// (fused_deep_linear.wgsl, generic; fused_deep_linear_narrow.wgsl, widths ≤ 4).
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
@group(0) @binding(5) var<uniform> p: Params;

override WG: u32 = 64u;

fn width(l: u32) -> u32 {
  if (l < 4u) {
    return p.widths0[l];
  }
  if (l < 8u) {
    return p.widths1[l - 4u];
  }
  return p.widths2[l - 8u];
}
