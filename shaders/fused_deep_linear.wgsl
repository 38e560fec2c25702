// Many online-SGD steps of a deep linear network per dispatch, one invocation per replica.
//
// For small networks (widths ≤ 8, depth ≤ 6) launch overhead, not arithmetic, bounds the general
// path (dozens of launches per step). Here a replica's whole step — fresh minibatch from the
// counter RNG, forward, backward, update — runs in one invocation's registers and private memory,
// for `steps` steps in a row. The random numbers, losses and update equal the general path's
// (same Philox streams and Box–Muller pairing, loss averaged over the minibatch: ½‖f − y‖², or with
// CROSS_ENTROPY logsumexp(f) − ⟨softmax(y), f⟩ as SoftmaxTargets around a LinearTeacher gives it);
// only the order of floating-point additions differs.

//!include fused_common.wgsl

override CROSS_ENTROPY: bool = false;

const MAX_WIDTH = 8u;
const MAX_DEPTH = 6u;
const MAX_WEIGHTS = 384u; // MAX_DEPTH · MAX_WIDTH²

var<private> w: array<f32, MAX_WEIGHTS>;
var<private> grad: array<f32, MAX_WEIGHTS>;
// Activations h_0..h_depth of the current sample, MAX_WIDTH each.
var<private> act: array<f32, 56>;
var<private> delta: array<f32, MAX_WIDTH>;
var<private> nextDelta: array<f32, MAX_WIDTH>;
var<private> z: array<f32, MAX_WIDTH>;
var<private> label: array<f32, MAX_WIDTH>;

// Offset of layer l's weights inside one replica's private copy.
fn layer_offset(l: u32) -> u32 {
  var offset = 0u;
  for (var j = 0u; j < l; j += 1u) {
    offset += width(j + 1u) * width(j);
  }
  return offset;
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let replica = gid.x;
  if (replica >= params.replicas) {
    return;
  }
  let depth = params.depth;
  let d = width(0u);
  let m = width(depth);
  let total = layer_offset(depth);
  let streamReplica = replica + params.replicaOffset;
  let rootXBase = replica * params.rootXStride;
  let rootEpsBase = replica * params.rootEpsStride;

  // Load this replica's weights from the layer-major packing.
  var packedBase = 0u;
  for (var l = 0u; l < depth; l += 1u) {
    let size = width(l + 1u) * width(l);
    let local = layer_offset(l);
    for (var k = 0u; k < size; k += 1u) {
      w[local + k] = weights[packedBase + replica * size + k];
    }
    packedBase += params.replicas * size;
  }

  let scale = 1.0 / f32(params.batchSize);
  var loss = 0.0;
  for (var s = 0u; s < params.steps; s += 1u) {
    // 64-bit step counter = start + s.
    let lo = params.stepLo + s;
    let step = vec2<u32>(lo, params.stepHi + select(0u, 1u, lo < params.stepLo));
    for (var k = 0u; k < total; k += 1u) {
      grad[k] = 0.0;
    }
    // New step, new blocks (block indices restart at 0).
    cachedInputBlock = 0xFFFFFFFFu;
    cachedNoiseBlock = 0xFFFFFFFFu;
    loss = 0.0;
    for (var b = 0u; b < params.batchSize; b += 1u) {
      // x = S_x z, y = V x + S_ε e, exactly as LinearTeacher.sample draws row b.
      for (var j = 0u; j < d; j += 1u) {
        z[j] = element_normal(STREAM_INPUTS, step, streamReplica, b * d + j);
      }
      for (var j = 0u; j < d; j += 1u) {
        var x = 0.0;
        for (var k = 0u; k < d; k += 1u) {
          x += rootX[rootXBase + j * d + k] * z[k];
        }
        act[j] = x;
      }
      for (var j = 0u; j < m; j += 1u) {
        z[j] = element_normal(STREAM_LABEL_NOISE, step, streamReplica, b * m + j);
      }
      for (var j = 0u; j < m; j += 1u) {
        var y = 0.0;
        for (var k = 0u; k < m; k += 1u) {
          y += rootEps[rootEpsBase + j * m + k] * z[k];
        }
        for (var k = 0u; k < d; k += 1u) {
          y += teacher[j * d + k] * act[k];
        }
        label[j] = y;
      }
      // Forward: h_{l+1} = W_l h_l.
      for (var l = 0u; l < depth; l += 1u) {
        let rows = width(l + 1u);
        let cols = width(l);
        let base = layer_offset(l);
        for (var i = 0u; i < rows; i += 1u) {
          var sum = 0.0;
          for (var k = 0u; k < cols; k += 1u) {
            sum += w[base + i * cols + k] * act[l * MAX_WIDTH + k];
          }
          act[(l + 1u) * MAX_WIDTH + i] = sum;
        }
      }
      let output = depth * MAX_WIDTH; // f = h_depth
      if (CROSS_ENTROPY) {
        // Targets p = softmax(y), prediction q = softmax(f) (each shifted by its largest entry);
        // loss log Σ exp f − ⟨p, f⟩ and δ = ∂(loss / B)/∂f = (q − p)/B.
        var labelTop = label[0];
        var top = act[output];
        for (var i = 1u; i < m; i += 1u) {
          labelTop = max(labelTop, label[i]);
          top = max(top, act[output + i]);
        }
        var labelTotal = 0.0;
        var total = 0.0;
        for (var i = 0u; i < m; i += 1u) {
          labelTotal += exp(label[i] - labelTop);
          total += exp(act[output + i] - top);
        }
        loss += top + log(total);
        for (var i = 0u; i < m; i += 1u) {
          let p = exp(label[i] - labelTop) / labelTotal;
          loss -= p * act[output + i];
          delta[i] = (exp(act[output + i] - top) / total - p) * scale;
        }
      } else {
        // Residual, loss, and δ = ∂(½‖f − y‖² / B)/∂f.
        for (var i = 0u; i < m; i += 1u) {
          let r = act[output + i] - label[i];
          loss += 0.5 * r * r;
          delta[i] = r * scale;
        }
      }
      // Backward: ∇W_l += δ_{l+1} h_lᵀ, δ_l = W_lᵀ δ_{l+1}.
      for (var step_back = 0u; step_back < depth; step_back += 1u) {
        let l = depth - 1u - step_back;
        let rows = width(l + 1u);
        let cols = width(l);
        let base = layer_offset(l);
        for (var k = 0u; k < cols; k += 1u) {
          nextDelta[k] = 0.0;
        }
        for (var i = 0u; i < rows; i += 1u) {
          for (var k = 0u; k < cols; k += 1u) {
            grad[base + i * cols + k] += delta[i] * act[l * MAX_WIDTH + k];
            nextDelta[k] += w[base + i * cols + k] * delta[i];
          }
        }
        for (var k = 0u; k < cols; k += 1u) {
          delta[k] = nextDelta[k];
        }
      }
    }
    for (var k = 0u; k < total; k += 1u) {
      w[k] -= params.learningRate * grad[k];
    }
  }
  lastLoss[replica] = loss * scale;

  packedBase = 0u;
  for (var l = 0u; l < depth; l += 1u) {
    let size = width(l + 1u) * width(l);
    let local = layer_offset(l);
    for (var k = 0u; k < size; k += 1u) {
      weights[packedBase + replica * size + k] = w[local + k];
    }
    packedBase += params.replicas * size;
  }
}
