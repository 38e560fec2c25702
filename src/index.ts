/// <reference types="@webgpu/types" />
/**
 * The public API of `sharpness-lab` (host-agnostic: hand it a `GPUDevice`; `sharpness-lab/node` and
 * `sharpness-lab/browser` make one for you). Grouped by layer; docs/api.md is the tour.
 * Conventions: tensors are f32 with a per-replica shape and a leading replica count (`batch`); a loss
 * is one value per replica, the mean over rows of a per-sample loss (e.g. ½‖f − y‖²).
 */

// ---- autodiff / tape -----------------------------------------------------------------------------
export { Tape, Var } from './autodiff/tape.ts';
// ---- engine --------------------------------------------------------------------------------------
export { InputError, KernelError } from './errors.ts';
export type { AdapterDescription, GpuContext } from './gpu/context.ts';
export { isSwiftShader } from './gpu/context.ts';
export { describeGpuAdapter, type GpuContextOptions, requestGpuContext } from './gpu/device.ts';
// ---- tensors (kernels on tensors, no gradient) ---------------------------------------------------
export { dot, matmul, norm, randomNormal, randomRademacher, randomUniform, reduce } from './kernels/index.ts';
export type { ShaderSources } from './kernels/registry.ts';
export { type DType, Engine, type EngineOptions, Tensor } from './tensor/engine.ts';

// ---- layers / blocks -----------------------------------------------------------------------------

// ---- curvature -----------------------------------------------------------------------------------
export {
  type DensityOptions,
  type DensityResult,
  denseHessian,
  type EigenOptions,
  type EigenResult,
  type ExactTraceResult,
  exactTrace,
  type FluctuationOptions,
  type FluctuationResult,
  gradientFluctuation,
  HessianOperator,
  type HessianSpec,
  hessianTrace,
  type LossClosure,
  minibatchGradientSquared,
  spectralDensity,
  type TraceOptions,
  type TraceResult,
  topEigenvalues,
  type Which,
} from './curvature/index.ts';
// ---- data ----------------------------------------------------------------------------------------
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
export type { DataSource, SampleRequest } from './data/source.ts';
export { TeacherStudent, type TeacherStudentSpec } from './data/teacher-student.ts';
// ---- experiments ---------------------------------------------------------------------------------
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
// ---- models --------------------------------------------------------------------------------------
export { type InitScheme, initParameters, initStd } from './models/init.ts';
// ---- losses --------------------------------------------------------------------------------------
export { type LossKind, lossFunction, mseLoss, softCrossEntropy } from './models/losses.ts';
export { buildModel, type Model, type ModelSpec, type ParameterSpec } from './models/model.ts';
// ---- weights (safetensors) -----------------------------------------------------------------------
export {
  batchedValues,
  decodeSafetensors,
  encodeSafetensors,
  type NamedTensor,
  replicaTensors,
} from './models/weights.ts';
// ---- theory (CPU, float64, deep linear networks) -------------------------------------------------
export {
  type DeepLinearInput,
  type DeepLinearTheory,
  deepLinearTheory,
  fluctuationAt,
  lambdaMaxAt,
  type Matrix,
  sharpnessAt,
  type TheoryConfig,
  validateTheoryConfig,
} from './theory/index.ts';
// ---- training (docs/api-training.md) --------------------------------------------------------------
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
export {
  type DivergenceReport,
  type LossFunction,
  type TrainOptions,
  train as trainReplicas,
} from './train/trainer.ts';
