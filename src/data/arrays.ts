/**
 * A user's own training data: inputs x [n, d] and targets y [n, m] held in memory (typed arrays,
 * arrays of rows, or what the .npy and CSV readers return), checked on the CPU (2-D, finite, as
 * many rows in x as in y) and kept on the GPU as a fixed training set. Minibatches are drawn with
 * replacement like any fixed set; optional label noise ε ~ N(0, Σ_ε) is added to y fresh at every
 * draw, keyed by (seed, replica, step) like the built-in sources.
 */
import { InputError } from '../errors.ts';
import type { Engine, Tensor } from '../tensor/engine.ts';
import type { Matrix } from '../theory/linalg.ts';
import { FixedDataset } from './fixed.ts';
import { GaussianSource, labelNoiseRoots, type SampleRequest, STREAM_LABEL_NOISE } from './source.ts';

/** A row-major table: values with their shape ([n] is read as one column), as the .npy reader returns. */
export interface NumericTable {
  values: ArrayLike<number>;
  shape: readonly number[];
}

/** Rows of numbers, or a row-major table. */
export type TableInput = readonly (readonly number[])[] | NumericTable;

/** Inputs and targets of one dataset, each named (a file, a field) for error messages. */
export interface LabelledTables {
  x: TableInput;
  y: TableInput;
  xField: string;
  yField: string;
}

/** A table checked to be 2-D and finite, as float32 for the GPU. */
export interface CheckedTable {
  values: Float32Array;
  rows: number;
  columns: number;
}

function isTable(value: TableInput): value is NumericTable {
  return !Array.isArray(value);
}

/**
 * Checks a table and converts it to float32 rows. `field` names it in errors (a config field or a
 * file name): shape not 1-D/2-D, empty, a ragged row, or a NaN/Inf (with its row and column).
 */
export function checkTable(value: TableInput, field: string): CheckedTable {
  let rows: number;
  let columns: number;
  let at: (i: number) => number;
  if (isTable(value)) {
    const { shape, values } = value;
    if (shape.length < 1 || shape.length > 2)
      throw new InputError(
        field,
        `must be a 1-D or 2-D array (rows × columns), got shape (${shape.join(', ')})`,
      );
    rows = shape[0];
    columns = shape.length === 2 ? shape[1] : 1;
    if (values.length !== rows * columns)
      throw new InputError(
        field,
        `shape (${shape.join(', ')}) needs ${rows * columns} values, got ${values.length}`,
      );
    at = (i) => values[i];
  } else {
    rows = value.length;
    columns = value[0]?.length ?? 0;
    value.forEach((row, r) => {
      if (!Array.isArray(row) || row.length !== columns)
        throw new InputError(
          field,
          `row ${r} has ${Array.isArray(row) ? row.length : 'no'} values, row 0 has ${columns}`,
        );
    });
    at = (i) => value[Math.floor(i / columns)][i % columns];
  }
  if (rows < 1 || columns < 1) throw new InputError(field, `is empty (${rows} rows × ${columns} columns)`);
  const out = new Float32Array(rows * columns);
  for (let i = 0; i < out.length; i++) {
    const v = at(i);
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new InputError(
        field,
        `row ${Math.floor(i / columns)}, column ${i % columns} is ${String(v)}; every value must be a finite number`,
      );
    if (!Number.isFinite(Math.fround(v)))
      throw new InputError(
        field,
        `row ${Math.floor(i / columns)}, column ${i % columns} is ${v}, beyond float32's range`,
      );
    out[i] = v;
  }
  return { values: out, rows, columns };
}

/** Inputs and targets of one dataset, paired row by row; `xField`/`yField` name them in errors. */
export function checkPairedTables(
  x: TableInput,
  y: TableInput,
  xField = 'x',
  yField = 'y',
): { x: CheckedTable; y: CheckedTable } {
  const checkedX = checkTable(x, xField);
  const checkedY = checkTable(y, yField);
  if (checkedX.rows !== checkedY.rows)
    throw new InputError(
      yField,
      `has ${checkedY.rows} rows but ${xField} has ${checkedX.rows}: inputs and targets are paired row by row`,
    );
  return { x: checkedX, y: checkedY };
}

export interface ArrayDataOptions {
  /** Label noise Σ_ε (m×m, positive definite) added to y at every draw; one per replica, or one for all. */
  sigmaEps?: Matrix | readonly Matrix[];
  xField?: string;
  yField?: string;
}

/**
 * A fixed training set from in-memory tables, with optional label noise. Full-batch gradient
 * descent (`fullBatch`) sees the targets as stored; minibatches get fresh noise.
 */
export class ArrayDataset extends FixedDataset {
  private readonly noise?: GaussianSource;

  constructor(engine: Engine, x: TableInput, y: TableInput, options: ArrayDataOptions = {}) {
    const tables = checkPairedTables(x, y, options.xField, options.yField);
    // Σ_ε is checked before any buffer is made.
    const roots =
      options.sigmaEps === undefined ? undefined : labelNoiseRoots(options.sigmaEps, tables.y.columns);
    super(
      engine,
      engine.tensor(tables.x.values, [tables.x.rows, tables.x.columns], { label: 'data x' }),
      engine.tensor(tables.y.values, [tables.y.rows, tables.y.columns], { label: 'data y' }),
    );
    if (roots) this.noise = new GaussianSource(engine, roots, STREAM_LABEL_NOISE, '√Σε');
  }

  override sample(request: SampleRequest): { x: Tensor; y: Tensor } {
    const batch = super.sample(request);
    this.noise?.draw(request, batch.y);
    return batch;
  }

  override dispose(): void {
    super.dispose();
    this.noise?.dispose();
  }
}
