/// <reference types="@webgpu/types" preserve="true" />
/**
 * The public API of `sharpness-lab` (host-agnostic: hand it a `GPUDevice`; `sharpness-lab/node` and
 * `sharpness-lab/browser` make one for you), one section per layer. docs/api.md (curvature, models,
 * engine) and docs/api-training.md (training, data, weights) are the tours.
 * Conventions: tensors are f32 with a per-replica shape and a leading replica count (`batch`); a loss
 * is one value per replica, the mean over rows of a per-sample loss (e.g. ½‖f − y‖²).
 */

// ---- autodiff / tape (elementwise ops and reductions are Tape methods) ---------------------------
export { Tape, Var } from './autodiff/tape.ts';
// ---- curvature: hessian() and the operator machinery under it ------------------------------------
export { denseHessian } from './curvature/dense.ts';
export { type DensityOptions, type DensityResult, spectralDensity } from './curvature/density.ts';
export {
  type FluctuationOptions,
  type FluctuationResult,
  gradientFluctuation,
  minibatchGradientSquared,
} from './curvature/fluctuation.ts';
export {
  type ArrayInput,
  BLOCK_EXACT_TRACE_MAX,
  type BlockCurvature,
  type GradientMoments,
  Hessian,
  type HessianEigen,
  type HessianEigenOptions,
  type HessianRequest,
  type HessianTrace,
  type HessianTraceOptions,
  hessian,
} from './curvature/hessian.ts';
export { type EigenOptions, type EigenResult, topEigenvalues, type Which } from './curvature/lanczos.ts';
export { HessianOperator, type HessianSpec, type LossClosure } from './curvature/operator.ts';
export {
  type ExactTraceResult,
  exactTrace,
  hessianTrace,
  type TraceOptions,
  type TraceResult,
} from './curvature/trace.ts';
// ---- data: your own tables (.npy, CSV, in memory) and the built-in sources -----------------------
export {
  type ArrayDataOptions,
  ArrayDataset,
  type CheckedTable,
  checkPairedTables,
  checkTable,
  type LabelledTables,
  type NumericTable,
  type TableInput,
} from './data/arrays.ts';
export { type CsvColumns, type CsvRecord, tablesFromCsv } from './data/csv.ts';
export { FixedDataset } from './data/fixed.ts';
export { LinearTeacher, type LinearTeacherSpec } from './data/linear-teacher.ts';
export { type NpyArray, parseNpy } from './data/npy.ts';
export type { DataSource, SampleRequest, TeacherNoiseSpec } from './data/source.ts';
export { TeacherStudent, type TeacherStudentSpec } from './data/teacher-student.ts';
// ---- errors --------------------------------------------------------------------------------------
export { InputError, KernelError } from './errors.ts';
// ---- experiments: configs as data, presets, the run, results -------------------------------------
export {
  applyQuick,
  type ExperimentConfig,
  type ExperimentConfigInput,
  parseExperimentConfig,
} from './experiments/config.ts';
export {
  type Checkpoint,
  type ExperimentHooks,
  type ExperimentOutcome,
  type ExperimentProgress,
  runExperiment,
} from './experiments/executor.ts';
export { PRESET_NAMES, presetConfig } from './experiments/presets/index.ts';
export { type ResultRow, summarise, toCsv } from './experiments/results.ts';
// ---- engine: device context, engine, tensors -----------------------------------------------------
export type { AdapterDescription, GpuContext } from './gpu/context.ts';
export { isSwiftShader } from './gpu/context.ts';
export { describeGpuAdapter, type GpuContextOptions, requestGpuContext } from './gpu/device.ts';
export type { ShaderSources } from './gpu/shader/registry.ts';
// ---- tensors: kernels on tensors (no gradient) ---------------------------------------------------
export { type FusedCurvature, fusedCurvature } from './kernels/fused-hvp.ts';
export { matmul } from './kernels/matmul.ts';
export { dot, norm, reduce } from './kernels/reduce.ts';
export { randomNormal, randomRademacher, randomUniform } from './kernels/rng.ts';
// ---- layers / blocks, losses, models, weights ----------------------------------------------------
export {
  type Activation,
  type AttentionHead,
  dense,
  embedding,
  layerNorm,
  multiHeadAttention,
  recurrentCell,
  residual,
  softmax,
} from './models/blocks.ts';
export { type InitScheme, initParameters, initStd } from './models/init.ts';
export {
  huberLoss,
  type LossFunction,
  type LossKind,
  logisticLoss,
  lossFunction,
  mseLoss,
  softCrossEntropy,
} from './models/losses.ts';
export {
  bias,
  buildModel,
  type Model,
  type ModelDefinition,
  type ModelSpec,
  type ParameterSpec,
  weight,
} from './models/model.ts';
export {
  batchedValues,
  decodeSafetensors,
  encodeSafetensors,
  type NamedTensor,
  replicaTensors,
} from './models/weights.ts';
export { type DType, Engine, type EngineOptions, Tensor } from './tensor/engine.ts';
// ---- theory (CPU, float64, deep linear networks) -------------------------------------------------
export { type DeepLinearInput, type DeepLinearTheory, deepLinearTheory } from './theory/deep-linear.ts';
export { fluctuationAt, lambdaMaxAt, sharpnessAt } from './theory/hessian.ts';
export type { Matrix } from './theory/linalg.ts';
export { type TheoryConfig, validateTheoryConfig } from './theory/validate.ts';
// ---- training (docs/api-training.md) -------------------------------------------------------------
export { type InMemoryData, type LogPoint, type TrainRequest, type TrainResult, train } from './train/api.ts';
export {
  CONSTANT_SCHEDULE,
  isPlainSgd,
  learningRateAt,
  type OptimizerInput,
  type OptimizerSpec,
  OptimizerState,
  optimizerSchema,
  PLAIN_SGD,
  parseOptimizer,
  parseSchedule,
  type ScheduleInput,
  type ScheduleSpec,
  scheduleSchema,
} from './train/optimizer.ts';
export { type DivergenceReport, type TrainOptions, train as trainReplicas } from './train/trainer.ts';
