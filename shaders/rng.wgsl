// Counter-based random numbers: Philox-4×32-10 (Salmon et al., SC'11). Each output block of four
// values is a pure function of (seed, stream, replica, counter, block), so any step of any run can
// be regenerated without state, and replicas never share a stream.
//
//   key     = (seed, stream)
//   counter = (block, replica, counterLo, counterHi)
//
// Element i of replica b comes from lane i % 4 of block i / 4. The CPU reference is
// src/kernels/philox.ts; both must stay bit-identical.

struct Params {
  n: u32,          // values per replica
  batch: u32,
  seed: u32,
  stream: u32,
  counterLo: u32,
  counterHi: u32,
  replicaOffset: u32, // start replica index (shards and sub-batches keep their streams)
  rowStride: u32,     // blocks per dispatch row
  a: f32,          // uniform: low; normal: mean
  b: f32,          // uniform: high; normal: standard deviation
  bound: u32,      // sample_integer: values in [0, bound)
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> outIndex: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 64u;

//!include philox.wgsl

struct Block {
  replica: u32,
  start: u32, // start element of the block within the replica
  bits: vec4<u32>,
  valid: bool,
}

fn block_at(gid: vec3<u32>) -> Block {
  var result: Block;
  let blocksPerReplica = (params.n + 3u) / 4u;
  let id = gid.y * params.rowStride + gid.x;
  result.valid = (id < blocksPerReplica * params.batch);
  result.replica = id / blocksPerReplica;
  let blockIndex = id % blocksPerReplica;
  result.start = blockIndex * 4u;
  result.bits = philox(
    vec4<u32>(blockIndex, result.replica + params.replicaOffset, params.counterLo, params.counterHi),
    vec2<u32>(params.seed, params.stream),
  );
  return result;
}

@compute @workgroup_size(WG, 1, 1)
fn sample_uniform(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block_at(gid);
  if (!blk.valid) {
    return;
  }
  for (var lane = 0u; lane < 4u; lane += 1u) {
    if (blk.start + lane < params.n) {
      out[blk.replica * params.n + blk.start + lane] = params.a + (params.b - params.a) * to_unit(blk.bits[lane]);
    }
  }
}

// Normal samples: Box–Muller on lane pairs (see philox.wgsl).
@compute @workgroup_size(WG, 1, 1)
fn sample_normal(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block_at(gid);
  if (!blk.valid) {
    return;
  }
  let z = box_muller(blk.bits);
  for (var lane = 0u; lane < 4u; lane += 1u) {
    if (blk.start + lane < params.n) {
      out[blk.replica * params.n + blk.start + lane] = params.a + params.b * z[lane];
    }
  }
}

// ±1 with equal probability (Rademacher probes for Hutchinson's trace estimator).
@compute @workgroup_size(WG, 1, 1)
fn sample_rademacher(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block_at(gid);
  if (!blk.valid) {
    return;
  }
  for (var lane = 0u; lane < 4u; lane += 1u) {
    if (blk.start + lane < params.n) {
      out[blk.replica * params.n + blk.start + lane] = select(-1.0, 1.0, (blk.bits[lane] >> 31u) == 1u);
    }
  }
}

// Integers in [0, bound) by multiply-high (Lemire), bias below 2^-32 · bound: minibatch indices.
@compute @workgroup_size(WG, 1, 1)
fn sample_integer(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block_at(gid);
  if (!blk.valid) {
    return;
  }
  for (var lane = 0u; lane < 4u; lane += 1u) {
    if (blk.start + lane < params.n) {
      outIndex[blk.replica * params.n + blk.start + lane] = mul_wide(blk.bits[lane], params.bound & 0xFFFFu, params.bound >> 16u).x;
    }
  }
}
