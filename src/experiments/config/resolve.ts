/**
 * Parsing a config (schema, names, references, panels), resolving a group (its overrides merged into
 * the base), the `--quick` override, and which groups a panel shows.
 */
import { InputError } from '../../errors.ts';
import { isPlainObject, JOB_KEYS, jobPart, mergeOverrides, overrideAttribution } from './merge.ts';
import {
  type Attribute,
  describe,
  formatPath,
  inputError,
  type Location,
  type Path,
  parseWith,
  plainPath,
} from './messages.ts';
import { DERIVED_METRICS, isKnownMetric, METRICS } from './metrics.ts';
import {
  type DataConfig,
  type ExperimentConfig,
  experimentSchema,
  type GroupSpec,
  jobSchema,
  type PanelSpec,
  type ResolvedGroupConfig,
} from './schema.ts';

/** Deeper than any config needs; deeper JSON would overflow the stack of the recursive merges. */
const MAX_NESTING = 32;

/** Experiment names that collide with a file a run writes beside the experiment folders (DIR/index.html). */
const RESERVED_NAMES = ['index.html'];

/** Refuses JSON nested deeper than `limit` (checked without recursion), naming the first deep path. */
function checkNesting(raw: unknown, limit: number): void {
  const stack: { value: unknown; path: Path }[] = [{ value: raw, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: Path };
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= limit)
      throw new InputError(formatPath(path), `nests deeper than ${limit} levels; no config needs that`);
    for (const [key, child] of Object.entries(value))
      stack.push({ value: child, path: [...path, Array.isArray(value) ? Number(key) : key] });
  }
}

function parseInternal(raw: unknown, attribute: Attribute): ExperimentConfig {
  if (!isPlainObject(raw)) throw inputError(attribute([]), `expected a JSON object, got ${describe(raw)}`);
  const config = parseWith(experimentSchema, raw, attribute);
  if (RESERVED_NAMES.includes(config.name.toLowerCase()))
    throw inputError(
      attribute(['name']),
      `'${config.name}' is the name of a file every run writes into the output folder; choose another name`,
    );
  // The base alone must be a complete job (its own checks, e.g. switchToGdAt ≤ steps).
  parseWith(jobSchema, jobPart(config), attribute);

  const names = new Map<string, number>();
  const resolved = new Map<string, ResolvedGroupConfig>();
  config.groups.forEach((group, i) => {
    if (names.has(group.name))
      throw inputError(
        attribute(['groups', i, 'name']),
        `'${group.name}' is also the name of groups[${names.get(group.name)}]`,
      );
    names.set(group.name, i);
  });
  config.groups.forEach((group, i) => {
    if (group.reference !== undefined && !names.has(group.reference)) {
      throw inputError(
        attribute(['groups', i, 'reference']),
        `no group is named '${group.reference}' (groups: ${[...names.keys()].join(', ')})`,
      );
    }
    const forbidden = Object.keys(group.overrides).find((key) => !JOB_KEYS.includes(key));
    if (forbidden !== undefined) {
      const hint = ['groups', 'panels', 'quick'].includes(forbidden)
        ? 'groups cannot override this'
        : 'unknown field; check the spelling';
      throw inputError(attribute(['groups', i, 'overrides', forbidden]), hint);
    }
    if (group.overrides.name !== undefined)
      throw inputError(attribute(['groups', i, 'overrides', 'name']), 'the experiment name is shared');
    resolved.set(group.name, resolveWith(config, i, attribute));
  });

  const panelNames = new Set<string>();
  config.panels.forEach((panel, p) => {
    const where = (...rest: Path) => attribute(['panels', p, ...rest]);
    const fail = (location: Location, message: string) => inputError(location, message);
    if (panelNames.has(panel.name)) throw fail(where('name'), `'${panel.name}' is used twice`);
    panelNames.add(panel.name);
    panel.metrics.forEach((metric, m) => {
      if (!isKnownMetric(metric))
        throw fail(
          where('metrics', m),
          `unknown metric '${metric}' (known: ${[...METRICS, ...DERIVED_METRICS].join(', ')}, layerCondition.<layer>)`,
        );
    });
    panel.metrics.forEach((metric, m) => {
      // A density is a curve over eigenvalues: only density panels draw it, and they draw nothing else.
      if ((metric === 'density') !== (panel.kind === 'density'))
        throw fail(
          where('metrics', m),
          panel.kind === 'density'
            ? `a density panel shows only 'density', not '${metric}'`
            : `'density' is shown by a panel of kind 'density'`,
        );
    });
    const shown = panelGroups(config, panel);
    panel.groups?.forEach((pattern, g) => {
      if (!config.groups.some((group) => matchesPattern(group.name, pattern)))
        throw fail(where('groups', g), `matches no group (groups: ${[...names.keys()].join(', ')})`);
    });
    panel.metrics.forEach((metric, m) => {
      const family = metric === 'relativeSharpness' ? 'sharpness' : metric.split('.')[0];
      const measured = shown.some((group) =>
        (resolved.get(group.name)?.measure.metrics as readonly string[] | undefined)?.includes(family),
      );
      if (!measured)
        throw fail(
          where('metrics', m),
          `no group shown in this panel measures '${family}' (add it to measure.metrics)`,
        );
    });
    if (panel.relative) {
      if (panel.kind !== 'final-vs-group')
        throw fail(where('relative'), 'only final-vs-group panels can be relative');
      const missing = shown.find((group) => group.reference === undefined);
      if (missing)
        throw fail(
          where('relative'),
          `group '${missing.name}' has no reference group to divide by (set groups[].reference)`,
        );
    }
    if (panel.kind === 'final-vs-group') {
      const missing = shown.find((group) => group.value === undefined);
      if (missing)
        throw fail(where('kind'), `group '${missing.name}' has no value to place it on the x axis`);
    }
  });
  return config;
}

/**
 * Parses and validates an experiment config (JSON data). Checks types, ranges, unknown fields, every
 * group with its overrides applied, panels against groups and metrics, and the `quick` override
 * applied. Matrices are only checked to be numbers here; `validateExperiment` does the rest.
 */
export function parseExperimentConfig(raw: unknown): ExperimentConfig {
  checkNesting(raw, MAX_NESTING);
  const config = parseInternal(raw, plainPath);

  if (config.quick !== undefined) quickConfig(config);
  return config;
}

/** A group's full job config: the base with the group's overrides deep-merged in (see `mergeOverrides`). */
export function resolveGroup(
  config: ExperimentConfig,
  group: GroupSpec | string | number,
): ResolvedGroupConfig {
  const index =
    typeof group === 'number'
      ? group
      : config.groups.findIndex((g) => g.name === (typeof group === 'string' ? group : group.name));
  if (!(index >= 0 && index < config.groups.length)) {
    const name = typeof group === 'object' ? group.name : String(group);
    throw new InputError(
      'groups',
      `no group '${name}' (groups: ${config.groups.map((g) => g.name).join(', ')})`,
    );
  }
  return resolveWith(config, index, plainPath);
}

/** Every group of the experiment, resolved, in config order. */
export function resolveGroups(config: ExperimentConfig): ResolvedGroupConfig[] {
  return config.groups.map((_, i) => resolveGroup(config, i));
}

function resolveWith(config: ExperimentConfig, index: number, attribute: Attribute): ResolvedGroupConfig {
  const group = config.groups[index];
  const inner = overrideAttribution(
    group.overrides,
    ['groups', index, 'overrides'],
    attribute,
    `in group '${group.name}'`,
  );
  const merged = mergeOverrides(jobPart(config), group.overrides);
  const job = parseWith(jobSchema, merged, inner);
  const resolved: ResolvedGroupConfig = {
    experiment: config.name,
    group: group.name,
    index,
    ...(group.value !== undefined && { value: group.value }),
    ...(group.series !== undefined && { series: group.series }),
    ...(group.reference !== undefined && { reference: group.reference }),
    model: job.model,
    loss: job.loss,
    data: job.data,
    ...(job.trainingSetSize !== undefined && { trainingSetSize: job.trainingSetSize }),
    init: job.init,
    train: job.train,
    measure: job.measure,
    seeds: job.seeds,
    seed: job.seed,
    noiseCovariance: noiseCovariance(job.data),
  };
  return resolved;
}

/** Σ_ε of a data config: `sigmaEps`, or R diag(noiseStd²) Rᵀ. Shapes are checked by `validateExperiment`. */
export function noiseCovariance(data: DataConfig): number[][] {
  if (data.sigmaEps !== undefined) return data.sigmaEps.map((row) => row.slice());
  const std = data.noiseStd ?? [];
  const m = std.length;
  const R = data.noiseRotation;
  const out = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      if (!R) {
        out[i][j] = i === j ? std[i] * std[i] : 0;
        continue;
      }
      let sum = 0;
      for (let k = 0; k < m; k++) sum += (R[i]?.[k] ?? 0) * std[k] * std[k] * (R[j]?.[k] ?? 0);
      out[i][j] = sum;
    }
  }
  return out;
}

function quickConfig(config: ExperimentConfig): ExperimentConfig {
  const { quick, ...rest } = config;
  if (quick === undefined) return config;
  if ('quick' in quick) throw new InputError('quick.quick', 'quick cannot be nested');
  const merged = mergeOverrides(rest, quick) as Record<string, unknown>;
  // Validation errors point into `quick` when it wrote the value, else at the config.
  const attribute = overrideAttribution(quick, ['quick'], plainPath, 'with quick applied');
  return parseInternal(merged, attribute);
}

/** The config with its `quick` override deep-merged in (and `quick` dropped); unchanged if it has none. */
export function applyQuick(config: ExperimentConfig): ExperimentConfig {
  const result = quickConfig(config);
  if (result === config) {
    const { quick: _, ...rest } = config;
    return rest as ExperimentConfig;
  }
  return result;
}

/** Whether a group name matches a panel's group pattern ('*' matches any run of characters). */
export function matchesPattern(name: string, pattern: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return regex.test(name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The groups a panel shows, in config order. */
export function panelGroups(config: ExperimentConfig, panel: PanelSpec): GroupSpec[] {
  const patterns = panel.groups;
  if (!patterns) return config.groups;
  return config.groups.filter((group) => patterns.some((pattern) => matchesPattern(group.name, pattern)));
}
