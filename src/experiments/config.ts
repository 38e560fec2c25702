/**
 * Experiments as data: the JSON schema of an experiment config (config/schema.ts), zod issues in the
 * project's words (config/messages.ts), group and quick overrides deep-merged (config/merge.ts),
 * parsing, resolution, `--quick` and panels (config/resolve.ts), metric names (config/metrics.ts), and
 * the deeper CPU-side checks (model shapes, covariances, buffer sizes) that must pass before any GPU
 * work (config/checks.ts). Every failure is an `InputError` whose field is the JSON path of the bad
 * value in the file as written, e.g. `groups[1].overrides.train.learningRate`.
 */
export {
  ANY_DEVICE_LIMITS,
  type BufferLimits,
  type BufferNeed,
  bufferNeeds,
  checkDeviceLimits,
  MNIST_INPUT_FEATURES,
  MNIST_OUTPUT_CLASSES,
  prepareExperiment,
  type ValidatedGroup,
  validateExperiment,
} from './config/checks.ts';
export { mergeOverrides } from './config/merge.ts';
export { formatPath, parsePath } from './config/messages.ts';
export {
  DERIVED_METRICS,
  isKnownMetric,
  layerConditionMetric,
  layerSharpnessMetrics,
  METRICS,
  type MetricName,
  metricMatches,
  topEigenvalueMetric,
} from './config/metrics.ts';
export {
  applyQuick,
  matchesPattern,
  noiseCovariance,
  panelGroups,
  parseExperimentConfig,
  resolveGroup,
  resolveGroups,
} from './config/resolve.ts';
export {
  type DataConfig,
  type ExperimentConfig,
  type ExperimentConfigInput,
  type FileDataConfig,
  FLOAT32_MAX,
  type GroupSpec,
  LIMITS,
  type MeasureConfig,
  type ModelConfig,
  type PanelSpec,
  type ResolvedGroupConfig,
  type TrainConfig,
} from './config/schema.ts';
