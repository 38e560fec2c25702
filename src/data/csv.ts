/**
 * Inputs and targets from the records of a CSV file (already split into fields by a CSV parser; the
 * Node host uses csv-parse): columns chosen by header name or 0-based index, every cell a finite
 * number. Errors name the file, the line and the column.
 */
import { InputError } from '../errors.ts';
import type { NumericTable } from './arrays.ts';

/** One CSV record: its fields and the 1-based line it starts on. */
export interface CsvRecord {
  fields: readonly string[];
  line: number;
}

export interface CsvColumns {
  /** Target columns: header names, or 0-based indices. */
  yColumns: readonly (string | number)[];
  /** Input columns (default: every column not in yColumns). */
  xColumns?: readonly (string | number)[];
  /** Whether the first record names the columns (default true). */
  header?: boolean;
}

/** Splits CSV records into x and y tables; `file` names the source in errors. */
export function tablesFromCsv(
  records: readonly CsvRecord[],
  columns: CsvColumns,
  file: string,
): { x: NumericTable; y: NumericTable } {
  const header = columns.header ?? true;
  const names = header ? records[0]?.fields.map((f) => f.trim()) : undefined;
  const body = header ? records.slice(1) : records;
  const width = names?.length ?? body[0]?.fields.length ?? 0;
  if (body.length === 0) throw new InputError(file, 'has no data rows');
  const resolve = (column: string | number, field: string): number => {
    if (typeof column === 'number') {
      if (!Number.isInteger(column) || column < 0 || column >= width)
        throw new InputError(
          field,
          `column ${column} is not in ${file}, whose rows have ${width} fields (indices from 0)`,
        );
      return column;
    }
    const index = names ? names.indexOf(column) : -1;
    if (index < 0)
      throw new InputError(
        field,
        names
          ? `no column '${column}' in ${file} (columns: ${names.join(', ')})`
          : `'${column}' names a column, but ${file} is read without a header (header: false): use 0-based indices`,
      );
    return index;
  };
  const y = columns.yColumns.map((c, i) => resolve(c, `data.yColumns[${i}]`));
  const x = columns.xColumns
    ? columns.xColumns.map((c, i) => resolve(c, `data.xColumns[${i}]`))
    : Array.from({ length: width }, (_, i) => i).filter((i) => !y.includes(i));
  for (const [field, list] of [
    ['data.xColumns', x],
    ['data.yColumns', y],
  ] as const) {
    if (list.length === 0) throw new InputError(field, `selects no column of ${file}`);
  }
  const label = (index: number) => (names ? `'${names[index]}'` : `${index}`);
  const xs = new Float64Array(body.length * x.length);
  const ys = new Float64Array(body.length * y.length);
  body.forEach((record, r) => {
    if (record.fields.length !== width)
      throw new InputError(
        file,
        `line ${record.line} has ${record.fields.length} fields, ${header ? 'the header has' : 'the first row has'} ${width}`,
      );
    const cell = (column: number): number => {
      const text = record.fields[column].trim();
      const value = text === '' ? Number.NaN : Number(text);
      if (!Number.isFinite(value))
        throw new InputError(
          file,
          `line ${record.line}, column ${label(column)}: ${JSON.stringify(text)} is not a finite number`,
        );
      return value;
    };
    x.forEach((column, k) => {
      xs[r * x.length + k] = cell(column);
    });
    y.forEach((column, k) => {
      ys[r * y.length + k] = cell(column);
    });
  });
  return {
    x: { values: xs, shape: [body.length, x.length] },
    y: { values: ys, shape: [body.length, y.length] },
  };
}
