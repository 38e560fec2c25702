/** Public API of the theory module (CPU, float64): closed forms and numerical checks for deep linear networks. */
export {
  type DeepLinearInput,
  type DeepLinearTheory,
  deepLinearTheory,
  type InitInput,
  initSharpness,
} from './deep-linear.ts';
export {
  balanceResidual,
  denseHessian,
  endToEnd,
  fluctuationAt,
  lambdaMaxAt,
  parameterCount,
  sharpnessAt,
} from './hessian.ts';
export type { Matrix } from './linalg.ts';
export {
  minimiseOrbit,
  type OrbitInput,
  type OrbitResult,
  orbitDistance,
  randomFactorisation,
} from './orbit.ts';
export { createRng, type Rng } from './random.ts';
export { MAX_DEPTH, type TheoryConfig, validateTheoryConfig } from './validate.ts';
