/**
 * Reader of NumPy's .npy format (numpy.lib.format, versions 1.0, 2.0 and 3.0): the magic
 * "\x93NUMPY", a version, a little-endian header length (2 bytes in 1.0, 4 in 2.0/3.0), a Python
 * dict literal {'descr': …, 'fortran_order': …, 'shape': (…)} padded with spaces and a newline,
 * then the raw values. Reads float32 and float64 (little-endian), C order or Fortran order up to
 * 2-D; everything else is refused with a message naming the file. Pure bytes in, so it runs in any host.
 */
import { InputError } from '../errors.ts';
import type { NumericTable } from './arrays.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** An array read from a .npy file: row-major values and their shape. */
export interface NpyArray extends NumericTable {
  values: Float32Array | Float64Array;
  shape: number[];
  dtype: 'float32' | 'float64';
}

const DTYPES: Record<string, { dtype: NpyArray['dtype']; bytes: number }> = {
  '<f4': { dtype: 'float32', bytes: 4 },
  '<f8': { dtype: 'float64', bytes: 8 },
  // '=' is native order: numpy writes '<' on little-endian hosts, where every WebGPU host runs.
  '=f4': { dtype: 'float32', bytes: 4 },
  '=f8': { dtype: 'float64', bytes: 8 },
};

/** Parses .npy bytes; `file` names the source in errors. */
export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new InputError(file, 'is not a .npy file (it does not start with the magic "\\x93NUMPY")');
  const major = bytes[6];
  if (major < 1 || major > 3)
    throw new InputError(
      file,
      `has .npy format version ${major}.${bytes[7]}; this reader knows 1.0, 2.0 and 3.0`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength =
    major === 1 ? view.getUint16(8, true) : bytes.length >= 12 ? view.getUint32(8, true) : 0;
  const headerStart = 8 + lengthBytes;
  const dataStart = headerStart + headerLength;
  if (headerLength === 0 || dataStart > bytes.length)
    throw new InputError(
      file,
      `is truncated: its header claims ${headerLength} bytes, the file has ${bytes.length}`,
    );
  // Version 3.0 allows UTF-8 in the header; 1.0 and 2.0 are latin-1, which has the same ASCII subset.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(headerStart, dataStart),
  );
  const { descr, fortranOrder, shape } = parseHeader(header, file);
  const type = DTYPES[descr];
  if (!type) {
    const hint = /^>/.test(descr)
      ? 'big-endian; save it little-endian (a.astype("<f4"))'
      : 'save it as float32 or float64 (a.astype("float32"))';
    throw new InputError(file, `has dtype '${descr}', which this reader does not take: ${hint}`);
  }
  if (fortranOrder && shape.length > 2)
    throw new InputError(
      file,
      'is a Fortran-order array of more than 2 dimensions; save np.ascontiguousarray(a)',
    );
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * type.bytes;
  const available = bytes.length - dataStart;
  if (available !== expected)
    throw new InputError(
      file,
      `holds ${available} bytes of data but shape (${shape.join(', ')}) of ${type.dtype} needs ${expected}`,
    );
  const values = type.dtype === 'float32' ? new Float32Array(count) : new Float64Array(count);
  // Element k of the file goes to row-major index k, or, for a Fortran-order (column-major) matrix
  // such as np.save of a transpose, to (k mod rows, k div rows).
  const [rows, columns] = [shape[0], shape[1] ?? 1];
  const fortran2d = fortranOrder && shape.length === 2;
  for (let k = 0; k < count; k++) {
    const at = dataStart + k * type.bytes;
    const index = fortran2d ? (k % rows) * columns + Math.floor(k / rows) : k;
    values[index] = type.bytes === 4 ? view.getFloat32(at, true) : view.getFloat64(at, true);
  }
  return { values, shape, dtype: type.dtype };
}

/** The three keys of the header dict, from its Python literal (as numpy writes it, any key order). */
function parseHeader(
  header: string,
  file: string,
): { descr: string; fortranOrder: boolean; shape: number[] } {
  const text = header.trim();
  const bad = (what: string) =>
    new InputError(file, `has a malformed .npy header (${what}): ${JSON.stringify(text.slice(0, 120))}`);
  if (!text.startsWith('{') || !text.endsWith('}')) throw bad('not a dict');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr) {
    if (/['"]descr['"]\s*:\s*[[{]/.test(text))
      throw new InputError(
        file,
        'has a structured dtype (record fields); save a plain float32 or float64 array',
      );
    throw bad("no 'descr'");
  }
  if (!fortran) throw bad("no 'fortran_order'");
  if (!shape) throw bad("no 'shape'");
  const dims = shape[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : Number.NaN));
  if (dims.some((d) => !Number.isSafeInteger(d))) throw bad('shape is not a tuple of integers');
  return { descr: descr[1], fortranOrder: fortran[1] === 'True', shape: dims };
}
