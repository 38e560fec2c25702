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
@group(0) @binding(2) var<uniform> p: Params;

override WG: u32 = 64u;

const PHILOX_M0 = 0xD2511F53u;
const PHILOX_M1 = 0xCD9E8D57u;
const PHILOX_W0 = 0x9E3779B9u;
const PHILOX_W1 = 0xBB67AE85u;
const TWO_PI = 6.283185307179586;
const PI = 3.141592653589793;

// Full 32×32 → 64-bit product as (hi, lo); WGSL has no 64-bit integers.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
  let aLo = a & 0xFFFFu;
  let aHi = a >> 16u;
  let bLo = b & 0xFFFFu;
  let bHi = b >> 16u;
  let ll = aLo * bLo;
  let lh = aLo * bHi;
  let hl = aHi * bLo;
  let hh = aHi * bHi;
  let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
  let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round += 1u) {
    let p0 = mul_wide(PHILOX_M0, c.x);
    let p1 = mul_wide(PHILOX_M1, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k += vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

// 23 high bits to a float strictly inside (0, 1) (exact in f32), so log() below never sees 0.
fn to_unit(bits: u32) -> f32 {
  return (f32(bits >> 9u) + 0.5) * (1.0 / 8388608.0);
}

struct Block {
  replica: u32,
  start: u32, // start element of the block within the replica
  bits: vec4<u32>,
  valid: bool,
}

fn block_at(gid: vec3<u32>) -> Block {
  var result: Block;
  let blocksPerReplica = (p.n + 3u) / 4u;
  let id = gid.y * p.rowStride + gid.x;
  result.valid = (id < blocksPerReplica * p.batch);
  result.replica = id / blocksPerReplica;
  let blockIndex = id % blocksPerReplica;
  result.start = blockIndex * 4u;
  result.bits = philox(
    vec4<u32>(blockIndex, result.replica + p.replicaOffset, p.counterLo, p.counterHi),
    vec2<u32>(p.seed, p.stream),
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
    if (blk.start + lane < p.n) {
      out[blk.replica * p.n + blk.start + lane] = p.a + (p.b - p.a) * to_unit(blk.bits[lane]);
    }
  }
}

// Box–Muller on lane pairs (0, 1) and (2, 3). The angle stays in [-π, π], where WGSL bounds the
// error of sin and cos (2^-11 absolute); the sign flip leaves the distribution unchanged.
@compute @workgroup_size(WG, 1, 1)
fn sample_normal(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blk = block_at(gid);
  if (!blk.valid) {
    return;
  }
  let u = vec4<f32>(to_unit(blk.bits.x), to_unit(blk.bits.y), to_unit(blk.bits.z), to_unit(blk.bits.w));
  let r0 = sqrt(-2.0 * log(u.x));
  let r1 = sqrt(-2.0 * log(u.z));
  let t0 = TWO_PI * u.y - PI;
  let t1 = TWO_PI * u.w - PI;
  let z = vec4<f32>(r0 * cos(t0), r0 * sin(t0), r1 * cos(t1), r1 * sin(t1));
  for (var lane = 0u; lane < 4u; lane += 1u) {
    if (blk.start + lane < p.n) {
      out[blk.replica * p.n + blk.start + lane] = p.a + p.b * z[lane];
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
    if (blk.start + lane < p.n) {
      out[blk.replica * p.n + blk.start + lane] = select(-1.0, 1.0, (blk.bits[lane] >> 31u) == 1u);
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
    if (blk.start + lane < p.n) {
      outIndex[blk.replica * p.n + blk.start + lane] = mul_wide(blk.bits[lane], p.bound).x;
    }
  }
}
