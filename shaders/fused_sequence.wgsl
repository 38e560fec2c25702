//!fragment: compiled only inside the fused sequence kernels (fused_rnn.wgsl, fused_transformer.wgsl).
// What the fused sequence kernels share: one sample's T·d inputs (time-major) and m label-noise
// normals drawn from the general path's Philox streams, an input or output vector of up to 8 as a
// pair of vec4 (lanes 0–3 and 4–7), the softmax of such a pair, and row-major matrices of up to 8×8
// as zero-padded 4×4 blocks. The includer declares SEQUENCE (T) and SEQUENCE_MAX_FEATURES (the
// largest T·d) and includes fused_common.wgsl first.

struct Pair {
  lo: vec4<f32>,
  hi: vec4<f32>,
}

// One sample's inputs x (T·d features, time-major), four to a vec4.
var<private> features: array<vec4<f32>, SEQUENCE_MAX_FEATURES / 4u>;

// Input features first … first + count − 1 (count ≤ 4) of the current sample, zero-padded.
fn feature_slice(first: u32, count: u32) -> vec4<f32> {
  if (first % 4u == 0u && count == 4u) {
    return features[first / 4u];
  }
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < count; k += 1u) {
    let i = first + k;
    v[k] = features[i / 4u][i % 4u];
  }
  return v;
}

// x_t as a pair (inputs 0–3, 4–7).
fn input_at(t: u32) -> Pair {
  let first = t * IN;
  let lo = feature_slice(first, min(IN, 4u));
  var hi = vec4<f32>(0.0);
  if (IN > 4u) {
    hi = feature_slice(first + 4u, IN - 4u);
  }
  return Pair(lo, hi);
}

// Whether sample inputs are drawn per time step straight from Philox: S_x = I (the general path's
// z·Iᵀ is z exactly) and whole blocks per time step (d = 4 or 8). Then the forward pass feeds x_t to
// teacher and student at once and keeps it in `features` for the backward pass (on SwiftShader each
// dynamically indexed access of a private array is a gather or scatter per lane; drawing x_t again
// in the backward pass instead was slower). Else `draw_inputs` fills `features` per sample.
fn inputs_direct(white: bool) -> bool {
  return white && IN % 4u == 0u;
}

// x_t of sample b, drawn directly (`inputs_direct`) or read from `features`.
fn sample_input(step: vec2<u32>, replica: u32, b: u32, t: u32, direct: bool) -> Pair {
  if (!direct) {
    return input_at(t);
  }
  let blocks = IN / 4u;
  let first = (b * SEQUENCE + t) * blocks;
  let key = vec2<u32>(params.seed, STREAM_INPUTS);
  let lo = box_muller(philox(vec4<u32>(first, replica, step.x, step.y), key));
  var hi = vec4<f32>(0.0);
  if (blocks == 2u) {
    hi = box_muller(philox(vec4<u32>(first + 1u, replica, step.x, step.y), key));
  }
  return Pair(lo, hi);
}

// Stores a directly drawn x_t into `features` for the backward pass (d = 4 or 8).
fn keep_input(t: u32, x: Pair) {
  let first = t * IN / 4u;
  features[first] = x.lo;
  if (IN == 8u) {
    features[first + 1u] = x.hi;
  }
}

// Sample b's inputs into `features`: T·d normals of the input stream, coloured by S_x unless S_x = I
// (then x = z exactly, as the general path's z·Iᵀ). `rootAt` is this replica's S_x in rootX.
fn draw_inputs(step: vec2<u32>, replica: u32, b: u32, white: bool, rootAt: u32) {
  let n = SEQUENCE * IN;
  let chunks = (n + 3u) / 4u;
  for (var c = 0u; c < chunks; c += 1u) {
    if (n % 4u == 0u) {
      // Whole Philox blocks per sample: no index straddles a block.
      features[c] = box_muller(philox(vec4<u32>(b * chunks + c, replica, step.x, step.y), vec2<u32>(params.seed, STREAM_INPUTS)));
    } else {
      features[c] = normals(STREAM_INPUTS, step, replica, b * n + 4u * c, min(4u, n - 4u * c));
    }
  }
  if (white) {
    return;
  }
  var z = features;
  for (var c = 0u; c < chunks; c += 1u) {
    var v = vec4<f32>(0.0);
    for (var u = 0u; u < 4u; u += 1u) {
      let j = 4u * c + u;
      if (j < n) {
        var sum = 0.0;
        for (var k = 0u; k < n; k += 1u) {
          sum += rootX[rootAt + j * n + k] * z[k / 4u][k % 4u];
        }
        v[u] = sum;
      }
    }
    features[c] = v;
  }
}

// Sample b's m label-noise normals as a pair (before colouring by S_ε).
fn draw_noise(step: vec2<u32>, replica: u32, b: u32) -> Pair {
  if (OUT % 4u == 0u) {
    let blocks = OUT / 4u;
    let key = vec2<u32>(params.seed, STREAM_LABEL_NOISE);
    let lo = box_muller(philox(vec4<u32>(b * blocks, replica, step.x, step.y), key));
    var hi = vec4<f32>(0.0);
    if (blocks == 2u) {
      hi = box_muller(philox(vec4<u32>(b * blocks + 1u, replica, step.x, step.y), key));
    }
    return Pair(lo, hi);
  }
  let lo = normals(STREAM_LABEL_NOISE, step, replica, b * OUT, min(OUT, 4u));
  var hi = vec4<f32>(0.0);
  if (OUT > 4u) {
    hi = normals(STREAM_LABEL_NOISE, step, replica, b * OUT + 4u, OUT - 4u);
  }
  return Pair(lo, hi);
}

// Softmax over the m valid lanes of a pair (the rest 0), and its log-normaliser.
struct Softmax {
  p: Pair,
  logNormaliser: f32,
}

fn softmax_of(v: Pair) -> Softmax {
  let validLo = vec4<bool>(0u < OUT, 1u < OUT, 2u < OUT, 3u < OUT);
  let validHi = vec4<bool>(4u < OUT, 5u < OUT, 6u < OUT, 7u < OUT);
  let lowest = vec4<f32>(-3.0e38);
  let top = max(select(lowest, v.lo, validLo), select(lowest, v.hi, validHi));
  let largest = max(max(top.x, top.y), max(top.z, top.w));
  let eLo = select(vec4<f32>(0.0), exp(v.lo - largest), validLo);
  let eHi = select(vec4<f32>(0.0), exp(v.hi - largest), validHi);
  let total = dot(eLo, vec4<f32>(1.0)) + dot(eHi, vec4<f32>(1.0));
  return Softmax(Pair(eLo / total, eHi / total), largest + log(total));
}

// A rows×cols row-major matrix's 4×4 block at (r0, c0) from a scratch copy, zero-padded, column-major.
fn block_of(value: ptr<function, array<f32, 64>>, rows: u32, cols: u32, r0: u32, c0: u32) -> mat4x4<f32> {
  var m = mat4x4<f32>();
  for (var i = 0u; i < 4u; i += 1u) {
    for (var j = 0u; j < 4u; j += 1u) {
      if (r0 + i < rows && c0 + j < cols) {
        m[j][i] = (*value)[(r0 + i) * cols + c0 + j];
      }
    }
  }
  return m;
}

fn load_block(base: u32, rows: u32, cols: u32, r0: u32, c0: u32) -> mat4x4<f32> {
  var scratch = array<f32, 64>();
  for (var k = 0u; k < rows * cols; k += 1u) {
    scratch[k] = weights[base + k];
  }
  return block_of(&scratch, rows, cols, r0, c0);
}

fn store_block(base: u32, rows: u32, cols: u32, r0: u32, c0: u32, m: mat4x4<f32>) {
  for (var i = 0u; i < 4u; i += 1u) {
    for (var j = 0u; j < 4u; j += 1u) {
      if (r0 + i < rows && c0 + j < cols) {
        weights[base + (r0 + i) * cols + c0 + j] = m[j][i];
      }
    }
  }
}

fn load_slice(base: u32, n: u32, first: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k += 1u) {
    if (first + k < n) {
      v[k] = weights[base + first + k];
    }
  }
  return v;
}

fn store_slice(base: u32, n: u32, first: u32, v: vec4<f32>) {
  for (var k = 0u; k < 4u; k += 1u) {
    if (first + k < n) {
      weights[base + first + k] = v[k];
    }
  }
}

// Whether S_x = I for this replica: the general path's z·S_xᵀ then equals z exactly, so the kernels
// skip the product.
fn inputs_white(replica: u32) -> bool {
  let n = SEQUENCE * IN;
  let rootXAt = replica * params.rootXStride;
  var white = true;
  for (var j = 0u; j < n; j += 1u) {
    for (var k = 0u; k < n; k += 1u) {
      if (rootX[rootXAt + j * n + k] != select(0.0, 1.0, j == k)) {
        white = false;
      }
    }
  }
  return white;
}

// This replica's S_ε (m×m, m ≤ 8) as four zero-padded blocks: ε = S_ε e.
struct NoiseRoot {
  ll: mat4x4<f32>,
  lh: mat4x4<f32>,
  hl: mat4x4<f32>,
  hh: mat4x4<f32>,
}

fn load_noise_root(replica: u32) -> NoiseRoot {
  var scratch = array<f32, 64>();
  for (var k = 0u; k < OUT * OUT; k += 1u) {
    scratch[k] = rootEps[replica * params.rootEpsStride + k];
  }
  return NoiseRoot(
    block_of(&scratch, OUT, OUT, 0u, 0u),
    block_of(&scratch, OUT, OUT, 0u, 4u),
    block_of(&scratch, OUT, OUT, 4u, 0u),
    block_of(&scratch, OUT, OUT, 4u, 4u),
  );
}

// A label: the clean teacher output plus S_ε e.
fn noisy_label(clean: Pair, root: NoiseRoot, e: Pair) -> Pair {
  return Pair(clean.lo + root.ll * e.lo + root.lh * e.hi, clean.hi + root.hl * e.lo + root.hh * e.hi);
}
