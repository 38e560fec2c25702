/**
 * Each group's parameters as named columns (groups.csv and the report's tables): read off the resolved
 * config, so a column exists for every experiment without the preset naming it — init scale s, κ(Σ_ε),
 * depth D, learning rate η, … — instead of living only in the group's name.
 */
import type { ValidatedGroup } from './config.ts';
import { csvField } from './results.ts';
import { conditionNumber } from './theory-rows.ts';

/** One column: its CSV name, its label with symbol for the report, and whether it is an integer. */
export interface ParameterColumn {
  key: string;
  label: string;
  integer: boolean;
  value: (group: ValidatedGroup) => number | string | undefined;
}

function trace(matrix: number[][]): number {
  return matrix.reduce((sum, row, i) => sum + row[i], 0);
}

/** Every column a group can have, in the order written. */
export const PARAMETER_COLUMNS: readonly ParameterColumn[] = [
  { key: 'series', label: 'series', integer: false, value: (g) => g.resolved.series },
  { key: 'value', label: 'group value', integer: false, value: (g) => g.resolved.value },
  { key: 'model', label: 'model', integer: false, value: (g) => g.resolved.model.kind },
  {
    key: 'depth',
    label: 'depth D',
    integer: true,
    value: (g) => g.model.parameters.filter((p) => p.role === 'weight').length,
  },
  {
    key: 'hidden',
    label: 'hidden widths',
    integer: false,
    // An MLP lists its hidden widths, an RNN has one hidden width.
    value: (g) => ('hidden' in g.resolved.model ? [g.resolved.model.hidden].flat().join(' ') : undefined),
  },
  { key: 'loss', label: 'loss', integer: false, value: (g) => g.resolved.loss },
  {
    key: 'initScale',
    label: 'init scale s',
    integer: false,
    value: (g) => (g.resolved.init.kind === 'normal' ? g.resolved.init.scale : g.resolved.init.kind),
  },
  // File data without added label noise has no Σ_ε (an empty matrix): no value, not an error.
  {
    key: 'kappaSigmaEps',
    label: 'κ(Σ_ε)',
    integer: false,
    value: (g) => (g.sigmaEps.length > 0 ? conditionNumber(g.sigmaEps) : undefined),
  },
  {
    key: 'traceSigmaEps',
    label: 'Tr Σ_ε',
    integer: false,
    value: (g) => (g.sigmaEps.length > 0 ? trace(g.sigmaEps) : undefined),
  },
  {
    key: 'traceSigmaX',
    label: 'Tr Σ_x',
    integer: false,
    value: (g) => (g.sigmaX ? trace(g.sigmaX) : undefined),
  },
  {
    key: 'learningRate',
    label: 'learning rate η',
    integer: false,
    value: (g) => g.resolved.train.learningRate,
  },
  { key: 'batchSize', label: 'batch B', integer: true, value: (g) => g.resolved.train.batchSize },
  { key: 'steps', label: 'steps', integer: true, value: (g) => g.resolved.train.steps },
  { key: 'switchToGdAt', label: 'GD from step', integer: true, value: (g) => g.resolved.train.switchToGdAt },
  { key: 'seeds', label: 'seeds', integer: true, value: (g) => g.resolved.seeds },
];

/** The columns whose value differs between groups (what distinguishes them), in column order. */
export function varyingColumns(groups: readonly ValidatedGroup[]): ParameterColumn[] {
  return PARAMETER_COLUMNS.filter((column) => {
    const values = new Set(groups.map((g) => String(column.value(g) ?? '')));
    return values.size > 1;
  });
}

/** groups.csv: one row per group (`group` then every column), RFC 4180 with CRLF like results.csv. */
export function groupsCsv(groups: readonly ValidatedGroup[]): string {
  const lines = [['group', ...PARAMETER_COLUMNS.map((c) => c.key)].join(',')];
  for (const g of groups) {
    lines.push(
      [g.resolved.group, ...PARAMETER_COLUMNS.map((c) => c.value(g) ?? '')].map((v) => csvField(v)).join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}
