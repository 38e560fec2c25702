/**
 * CPU reference of the counter-based generator in shaders/rng.wgsl (Philox-4×32-10), bit-identical
 * to the GPU: key = (seed, stream), counter = (block, replica, counterLo, counterHi).
 */
const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32, from 16-bit partial products (exact in float64). */
export function mulHi(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const ll = aLo * bLo;
  const lh = aLo * bHi;
  const hl = aHi * bLo;
  const hh = aHi * bHi;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let round = 0; round < 10; round++) {
    const hi0 = mulHi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulHi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** The float the shader makes from 32 random bits: 23 high bits, centred, strictly inside (0, 1). */
export function toUnit(bits: number): number {
  return ((bits >>> 9) + 0.5) / 8388608;
}

export interface StreamPosition {
  seed: number;
  stream: number;
  counter: number;
  replica: number;
}

/** Raw 32-bit outputs for elements [0, n) of one replica. */
export function philoxBits(position: StreamPosition, n: number): Uint32Array {
  const out = new Uint32Array(n);
  const counterLo = position.counter % 2 ** 32;
  const counterHi = Math.floor(position.counter / 2 ** 32);
  for (let block = 0; block * 4 < n; block++) {
    const bits = philox4x32(
      [block, position.replica, counterLo, counterHi],
      [position.seed, position.stream],
    );
    for (let lane = 0; lane < 4 && block * 4 + lane < n; lane++) out[block * 4 + lane] = bits[lane];
  }
  return out;
}

/** Uniform samples in (low, high) as the GPU makes them (computed in float64 from the same bits). */
export function philoxUniform(position: StreamPosition, n: number, low = 0, high = 1): Float64Array {
  return Float64Array.from(philoxBits(position, n), (bits) => low + (high - low) * toUnit(bits));
}

/** Normal samples via the shader's Box–Muller pairing (angle in [-π, π]), in float64 from the same bits. */
export function philoxNormal(position: StreamPosition, n: number, mean = 0, std = 1): Float64Array {
  const bits = philoxBits(position, Math.ceil(n / 4) * 4);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const pair = i - (i % 2);
    const u1 = toUnit(bits[pair]);
    const u2 = toUnit(bits[pair + 1]);
    const r = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2 - Math.PI;
    out[i] = mean + std * (i % 2 === 0 ? r * Math.cos(angle) : r * Math.sin(angle));
  }
  return out;
}
