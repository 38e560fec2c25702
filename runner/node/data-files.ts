/**
 * The user's own data files on the Node host: .npy (src/data/npy.ts) and CSV (csv-parse, columns
 * picked by src/data/csv.ts). `loadDataFiles` reads every file a config's `data: { kind: 'file' }`
 * names, relative to the config file, and checks it against the model before any GPU work: a bad
 * file is an InputError naming the file and the row or field (exit 2, nothing written).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CsvError, parse } from 'csv-parse/sync';
import { checkPairedTables, type LabelledTables, type NumericTable } from '../../src/data/arrays.ts';
import { type CsvColumns, type CsvRecord, tablesFromCsv } from '../../src/data/csv.ts';
import { type NpyArray, parseNpy } from '../../src/data/npy.ts';
import { InputError } from '../../src/errors.ts';
import {
  type ExperimentConfig,
  type FileDataConfig,
  validateExperiment,
} from '../../src/experiments/config.ts';

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : (code ?? String(error));
    throw new InputError(path, `cannot read the data file (${why})`);
  }
}

/** Reads a float32/float64 .npy file (errors name `path`). */
export function readNpyFile(path: string): NpyArray {
  return parseNpy(readBytes(path), path);
}

/** Reads inputs and targets from a CSV file: comma-separated, a header row unless `header: false`. */
export function readCsvFile(
  path: string,
  columns: CsvColumns,
): { x: NumericTable; y: NumericTable; xField: string; yField: string } {
  const text = new TextDecoder('utf-8').decode(readBytes(path));
  let records: CsvRecord[];
  try {
    const parsed = parse(text, {
      info: true,
      skip_empty_lines: true,
      // Row widths are checked below, with the line and the width expected.
      relax_column_count: true,
      bom: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
    records = parsed.map(({ record, info }) => ({ fields: record, line: info.lines }));
  } catch (error) {
    if (error instanceof CsvError) throw new InputError(path, `is not valid CSV: ${error.message}`);
    throw error;
  }
  const tables = tablesFromCsv(records, columns, path);
  return { ...tables, xField: `${path} (x columns)`, yField: `${path} (y columns)` };
}

/** The tables of one file-data config, paths taken relative to `baseDir`. */
export function readDataFiles(data: FileDataConfig, baseDir: string): LabelledTables {
  if (data.csv !== undefined)
    return readCsvFile(join(baseDir, data.csv), {
      yColumns: data.yColumns ?? [],
      xColumns: data.xColumns,
      header: data.header,
    });
  const xPath = join(baseDir, data.x ?? '');
  const yPath = join(baseDir, data.y ?? '');
  return { x: readNpyFile(xPath), y: readNpyFile(yPath), xField: xPath, yField: yPath };
}

/**
 * Reads and checks every group's data files (each file once) against the group's model: finite
 * values, as many rows in x as in y, x's columns = the model's input features, y's = its outputs,
 * and at least train.batchSize rows. Returns the executor's `dataFiles` hook, or undefined when no
 * group reads files. `baseDir` is the config file's folder.
 */
export function loadDataFiles(
  config: ExperimentConfig,
  baseDir: string,
): ((groupIndex: number) => LabelledTables) | undefined {
  const groups = validateExperiment(config);
  const byGroup = new Map<number, LabelledTables>();
  const cache = new Map<string, { tables: LabelledTables; rows: number; inputs: number; outputs: number }>();
  for (const [index, { resolved, model }] of groups.entries()) {
    const data = resolved.data;
    if (data.kind !== 'file') continue;
    const key = JSON.stringify([data.x, data.y, data.csv, data.xColumns, data.yColumns, data.header]);
    let entry = cache.get(key);
    if (!entry) {
      const read = readDataFiles(data, baseDir);
      const { x, y } = checkPairedTables(read.x, read.y, read.xField, read.yField);
      const tables = {
        x: { values: x.values, shape: [x.rows, x.columns] },
        y: { values: y.values, shape: [y.rows, y.columns] },
        xField: read.xField,
        yField: read.yField,
      };
      entry = { tables, rows: x.rows, inputs: x.columns, outputs: y.columns };
      cache.set(key, entry);
    }
    const { tables, rows, inputs, outputs } = entry;
    const where = config.groups.length > 1 ? ` (group '${resolved.group}')` : '';
    if (inputs !== model.inputFeatures)
      throw new InputError(
        tables.xField,
        `has ${inputs} input columns but the model reads ${model.inputFeatures} features per row (model.inputDim)${where}`,
      );
    if (outputs !== model.outputDim)
      throw new InputError(
        tables.yField,
        `has ${outputs} target columns but the model gives ${model.outputDim} outputs (model.outputDim)${where}`,
      );
    if (resolved.train.batchSize > rows)
      throw new InputError(
        'train.batchSize',
        `${resolved.train.batchSize} is larger than the training set (${rows} rows in ${tables.xField})${where}`,
      );
    byGroup.set(index, tables);
  }
  if (byGroup.size === 0) return undefined;
  return (groupIndex) => {
    const tables = byGroup.get(groupIndex);
    if (!tables) throw new Error(`group ${groupIndex} reads no data files`);
    return tables;
  };
}
