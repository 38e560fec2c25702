//!fragment: the Philox generator, compiled only inside the kernels that include it.
// Philox-4×32-10 (Salmon et al., SC'11) and the conversions to uniform and normal floats, shared by
// every kernel that draws random numbers (`//!include philox.wgsl`). The CPU reference is
// src/kernels/philox.ts; both must stay bit-identical.

const PHILOX_M0 = 0xD2511F53u;
const PHILOX_M1 = 0xCD9E8D57u;
const PHILOX_W0 = 0x9E3779B9u;
const PHILOX_W1 = 0xBB67AE85u;
const TWO_PI = 6.283185307179586;
const PI = 3.141592653589793;

// Full 32×32 → 64-bit product a·b as (hi, lo), b given as its 16-bit halves (Philox passes its
// constants, folded at compile time); WGSL has no 64-bit integers. With a = aHi·2¹⁶ + aLo:
//   a·b = aHi·bHi·2³² + mid·2¹⁶ + aLo·bLo,   mid = aHi·bLo + aLo·bHi.
// mid and the low word are summed with wrapping adds and their carries recovered by comparison
// (a wrapped sum is smaller than its addend). Right shifts are what this costs on SwiftShader, which
// runs a vector shift lane by lane (~7× a multiply): two here, six originally; each step from six to
// four to two made the fused SGD kernels 15–20 % faster with identical bits.
fn mul_wide(a: u32, bLo: u32, bHi: u32) -> vec2<u32> {
  let aLo = a & 0xFFFFu;
  let aHi = a >> 16u;
  let m1 = aHi * bLo;
  let mid = m1 + aLo * bHi;                // mod 2³²; a lost 2³² is 2⁴⁸ of the product, 2¹⁶ of hi
  let low = aLo * bLo;
  let lo = low + mid * 0x10000u;           // (mid mod 2¹⁶)·2¹⁶ + aLo·bLo, mod 2³²: equals a·b
  let carries = select(0u, 0x10000u, mid < m1) + select(0u, 1u, lo < low);
  return vec2<u32>(aHi * bHi + (mid >> 16u) + carries, lo);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round += 1u) {
    let p0 = mul_wide(c.x, PHILOX_M0 & 0xFFFFu, PHILOX_M0 >> 16u);
    let p1 = mul_wide(c.z, PHILOX_M1 & 0xFFFFu, PHILOX_M1 >> 16u);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k += vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

// 23 high bits to a float strictly inside (0, 1) (exact in f32), so log() below never sees 0.
fn to_unit(bits: u32) -> f32 {
  return (f32(bits >> 9u) + 0.5) * (1.0 / 8388608.0);
}

// Box–Muller on lane pairs (0, 1) and (2, 3). The angle stays in [-π, π], where WGSL bounds the
// error of sin and cos (2^-11 absolute); the sign flip leaves the distribution unchanged.
fn box_muller(bits: vec4<u32>) -> vec4<f32> {
  let u = vec4<f32>(to_unit(bits.x), to_unit(bits.y), to_unit(bits.z), to_unit(bits.w));
  let r0 = sqrt(-2.0 * log(u.x));
  let r1 = sqrt(-2.0 * log(u.z));
  let t0 = TWO_PI * u.y - PI;
  let t1 = TWO_PI * u.w - PI;
  return vec4<f32>(r0 * cos(t0), r0 * sin(t0), r1 * cos(t1), r1 * sin(t1));
}
