/**
 * Named weights and the safetensors format (huggingface/safetensors, the file PyTorch, JAX and NumPy
 * users load): 8 bytes of little-endian u64 header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}} (padded
 * with spaces to a multiple of 8), then the tensors' raw little-endian bytes, offsets relative to the
 * end of the header. Written as F32 in name order; read as F32 or F64 (converted to float32).
 * Replica r of a batched parameter is one tensor named `<prefix of r>/<parameter name>`, e.g.
 * `anisotropic/3/W1` for a run's group and seed. Pure bytes in and out: any host.
 */
import { InputError } from '../errors.ts';
import type { Model } from './model.ts';

/** One tensor: row-major float32 values and their shape. */
export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8 };
/** A header longer than this is not a weights file (the reference implementation's limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** The safetensors bytes of `tensors` (names must be unique), with optional string metadata. */
export function encodeSafetensors(
  tensors: readonly NamedTensor[],
  metadata?: Record<string, string>,
): Uint8Array {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of sorted) {
    if (t.name in header) throw new InputError(t.name, 'is the name of two tensors');
    if (t.values.length !== t.shape.reduce((a, b) => a * b, 1))
      throw new InputError(t.name, `shape [${t.shape}] does not hold ${t.values.length} values`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.values.length] };
    offset += 4 * t.values.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  bytes.fill(0x20, 8, 8 + headerLength);
  bytes.set(json, 8);
  let at = 8 + headerLength;
  for (const t of sorted) {
    for (const v of t.values) {
      view.setFloat32(at, v, true);
      at += 4;
    }
  }
  return bytes;
}

/** Reads safetensors bytes; `file` names the source in errors (bad header, dtype, offsets). */
export function decodeSafetensors(bytes: Uint8Array, file: string): NamedTensor[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8)
    throw new InputError(file, 'is not a safetensors file (shorter than its 8-byte header length)');
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length)
    throw new InputError(
      file,
      `is not a safetensors file (its header length ${headerLength} exceeds the file's ${bytes.length} bytes)`,
    );
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)),
    );
  } catch (error) {
    throw new InputError(
      file,
      `is not a safetensors file (its header is not JSON: ${(error as Error).message})`,
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new InputError(file, 'is not a safetensors file (its header is not a JSON object)');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors: NamedTensor[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const {
      dtype,
      shape,
      data_offsets: offsets,
    } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const itemBytes = typeof dtype === 'string' ? DTYPE_BYTES[dtype] : undefined;
    if (itemBytes === undefined)
      throw new InputError(
        `${file}: ${name}`,
        `has dtype ${JSON.stringify(dtype)}; this reader takes F32 and F64`,
      );
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new InputError(`${file}: ${name}`, `has a malformed shape ${JSON.stringify(shape)}`);
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o)) ||
      offsets[0] < 0 ||
      offsets[1] > dataLength ||
      offsets[1] - offsets[0] !== count * itemBytes
    )
      throw new InputError(
        `${file}: ${name}`,
        `data_offsets ${JSON.stringify(offsets)} do not hold shape [${shape}] of ${dtype} within the ${dataLength} data bytes`,
      );
    const values = new Float32Array(count);
    const start = dataStart + offsets[0];
    for (let i = 0; i < count; i++)
      values[i] =
        itemBytes === 4 ? view.getFloat32(start + 4 * i, true) : view.getFloat64(start + 8 * i, true);
    tensors.push({ name, shape: shape as number[], values });
  }
  return tensors;
}

/**
 * Splits a model's batched parameter values (one array per parameter, replica-major) into one named
 * tensor per replica and parameter: `<prefixes[r]>/<parameter name>`.
 */
export function replicaTensors(
  model: Pick<Model, 'parameters'>,
  values: readonly ArrayLike<number>[],
  prefixes: readonly string[],
): NamedTensor[] {
  return prefixes.flatMap((prefix, r) =>
    model.parameters.map((spec, i) => {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      return {
        name: `${prefix}/${spec.name}`,
        shape: [...spec.shape],
        values: Float32Array.from({ length: size }, (_, k) => values[i][r * size + k]),
      };
    }),
  );
}

/**
 * The inverse of `replicaTensors`: one replica-major array per parameter for the replicas named by
 * `prefixes` (the prefix '' reads the bare parameter name), from tensors found by name. A missing tensor or a shape that is not the parameter's is
 * an InputError naming `field` (the file) and the tensor.
 */
export function batchedValues(
  model: Pick<Model, 'parameters'>,
  tensors: readonly NamedTensor[],
  prefixes: readonly string[],
  field: string,
): Float32Array[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return model.parameters.map((spec) => {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(prefixes.length * size);
    prefixes.forEach((prefix, r) => {
      const name = prefix === '' ? spec.name : `${prefix}/${spec.name}`;
      const t = byName.get(name);
      if (!t) {
        const known = [...byName.keys()];
        const shown = known.slice(0, 6).join(', ') + (known.length > 6 ? ', …' : '');
        throw new InputError(field, `has no tensor '${name}' (it has ${known.length}: ${shown})`);
      }
      if (t.shape.join() !== spec.shape.join())
        throw new InputError(
          field,
          `tensor '${name}' has shape [${t.shape}], the model's ${spec.name} is [${spec.shape}]`,
        );
      out.set(t.values, r * size);
    });
    return out;
  });
}
