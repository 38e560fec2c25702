//!fragment: never compiled alone. Its includers first declare `alias Layer = mat4x4<f32>;`
// (fused_deep_linear_narrow.wgsl) or `mat2x2<f32>` (fused_deep_linear_2x2.wgsl): WGSL has no
// generics, so the layer type is theirs. Needs fused_common.wgsl (weights, params, width).
//
// A deep linear network's layers W_0 … W_{DEPTH−1}, zero-padded to Layer, as named variables rather
// than an array: CPU adapters neither unroll loops nor keep dynamically indexed private arrays in
// registers, and a layer loop over an array ran at half the speed on SwiftShader. Layers at or
// beyond DEPTH are never touched (DEPTH is a pipeline constant: the branches on it fold away).

// Compile-time depth: the kernels' layer chains have constant length.
override DEPTH: u32 = 3u;

var<private> W0: Layer;
var<private> W1: Layer;
var<private> W2: Layer;
var<private> W3: Layer;
var<private> W4: Layer;
var<private> W5: Layer;
var<private> W6: Layer;
var<private> W7: Layer;
var<private> W8: Layer;
var<private> W9: Layer;

fn get_layer(l: u32) -> Layer {
  switch l {
    case 0u: { return W0; }
    case 1u: { return W1; }
    case 2u: { return W2; }
    case 3u: { return W3; }
    case 4u: { return W4; }
    case 5u: { return W5; }
    case 6u: { return W6; }
    case 7u: { return W7; }
    case 8u: { return W8; }
    default: { return W9; }
  }
}

fn set_layer(l: u32, m: Layer) {
  switch l {
    case 0u: { W0 = m; }
    case 1u: { W1 = m; }
    case 2u: { W2 = m; }
    case 3u: { W3 = m; }
    case 4u: { W4 = m; }
    case 5u: { W5 = m; }
    case 6u: { W6 = m; }
    case 7u: { W7 = m; }
    case 8u: { W8 = m; }
    default: { W9 = m; }
  }
}

// This replica's layers from the layer-major packing (fused_common.wgsl), and back. Entries past a
// layer's widths stay zero.
fn load_layers(replica: u32) {
  var packedBase = 0u;
  for (var l = 0u; l < DEPTH; l += 1u) {
    let rows = width(l + 1u);
    let cols = width(l);
    var m = Layer();
    for (var i = 0u; i < rows; i += 1u) {
      for (var j = 0u; j < cols; j += 1u) {
        m[j][i] = weights[packedBase + replica * rows * cols + i * cols + j];
      }
    }
    set_layer(l, m);
    packedBase += params.replicas * rows * cols;
  }
}

fn store_layers(replica: u32) {
  var packedBase = 0u;
  for (var l = 0u; l < DEPTH; l += 1u) {
    let rows = width(l + 1u);
    let cols = width(l);
    let m = get_layer(l);
    for (var i = 0u; i < rows; i += 1u) {
      for (var j = 0u; j < cols; j += 1u) {
        weights[packedBase + replica * rows * cols + i * cols + j] = m[j][i];
      }
    }
    packedBase += params.replicas * rows * cols;
  }
}
