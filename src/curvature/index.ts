/** Public API of the curvature toolkit: Hessian operator, traces, eigenvalues, spectral density, fluctuation. */
export { COPY_BUDGET_FLOATS, copiesWithinBudget, withFittingCopies } from './copies.ts';
export {
  DENSE_HESSIAN_MAX_PARAMETERS,
  denseColumnsPerLaunch,
  denseHessian,
  denseHessianEigenvalues,
} from './dense.ts';
export { type DensityOptions, type DensityResult, spectralDensity } from './density.ts';
export {
  encodeFluctuation,
  type FluctuationOptions,
  type FluctuationResult,
  fluctuationStatistics,
  gradientFluctuation,
  minibatchGradientSquared,
} from './fluctuation.ts';
export {
  type EigenOptions,
  type EigenResult,
  type LanczosRecurrence,
  lanczosRecurrence,
  type PowerOptions,
  type PowerResult,
  powerIteration,
  type RecurrenceOptions,
  topEigenvalues,
  type Which,
} from './lanczos.ts';
export {
  type CurvatureMeasurement,
  type CurvatureRequest,
  MEASURE_DENSE_MAX_PARAMETERS,
  MEASURE_EXACT_TRACE_MAX_PARAMETERS,
  measureCurvature,
} from './measure.ts';
export {
  type EvaluationData,
  type EvaluationSet,
  HessianOperator,
  type HessianSpec,
  type LossClosure,
  type ParameterLayout,
  parameterLayout,
  type SampleSource,
} from './operator.ts';
export { randomVectors, STREAM_HUTCHINSON, STREAM_LANCZOS, STREAM_POWER, STREAM_SLQ } from './probes.ts';
export {
  batchMean,
  CHUNK_BUDGET_FLOATS,
  chunkSamples,
  DEFAULT_EVALUATION_CHUNKS,
  EvaluationChunks,
  type EvaluationChunksSpec,
  measureSampleEstimates,
  type SampleEstimate,
  type SampleEstimateRequest,
  type SampleMeasurement,
} from './sample-estimates.ts';
export {
  type ExactTraceResult,
  exactTrace,
  hessianTrace,
  type TraceOptions,
  type TraceResult,
} from './trace.ts';
export { symmetricEigenvalues, type TridiagonalEigen, tridiagonalEigen } from './tridiagonal.ts';
