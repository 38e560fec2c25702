/**
 * The public API of `sharpness-lab` — the training half (issue 16 part B): the `train()` API,
 * optimizers and schedules, the user's own data (in-memory tables, .npy, CSV records) and weights
 * (safetensors). docs/api-training.md is the tour. The curvature, blocks and engine exports live
 * beside these in the merged index.
 */

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
export { type NpyArray, parseNpy } from './data/npy.ts';
export {
  batchedValues,
  decodeSafetensors,
  encodeSafetensors,
  type NamedTensor,
  replicaTensors,
} from './models/weights.ts';
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
