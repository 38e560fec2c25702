/**
 * Input validation for the theory module. Every failure is an `InputError` naming the offending
 * field (`depth`, `V[1]`, `sigmaX[1][0]`, …) so the CLI can exit with code 2 and a useful message.
 */
import { InputError } from '../errors.ts';
import { type Matrix, symmetricEigen, toMl } from './linalg.ts';

/** A validated theory configuration: V is m×d, Σ_x is d×d and Σ_ε is m×m, both symmetric positive definite. */
export interface TheoryConfig {
  depth: number;
  V: Matrix;
  sigmaX: Matrix;
  sigmaEps: Matrix;
}

/** The largest depth accepted (the closed forms are fine beyond it; the dense Hessian is not). */
export const MAX_DEPTH = 1000;

const KNOWN_KEYS = ['depth', 'V', 'sigmaX', 'sigmaEps'];

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)}`;
  if (typeof value === 'number') return String(value);
  return `a ${typeof value}`;
}

/** Parses an array of rows of finite numbers, all rows the same length (at least 1×1). */
export function parseMatrix(raw: unknown, field: string): Matrix {
  if (!Array.isArray(raw))
    throw new InputError(field, `expected a matrix (array of rows), got ${describe(raw)}`);
  if (raw.length === 0) throw new InputError(field, 'expected at least one row, got an empty array');
  const rows: Matrix = [];
  for (let i = 0; i < raw.length; i++) {
    const row: unknown = raw[i];
    if (!Array.isArray(row))
      throw new InputError(`${field}[${i}]`, `expected a row (array of numbers), got ${describe(row)}`);
    if (row.length === 0)
      throw new InputError(`${field}[${i}]`, 'expected at least one entry, got an empty row');
    if (i > 0 && row.length !== rows[0].length) {
      throw new InputError(
        `${field}[${i}]`,
        `has ${row.length} entries but ${field}[0] has ${rows[0].length}`,
      );
    }
    rows.push(
      row.map((v: unknown, j: number) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new InputError(`${field}[${i}][${j}]`, `expected a finite number, got ${describe(v)}`);
        }
        return v;
      }),
    );
  }
  return rows;
}

/**
 * Checks that `a` is an n×n symmetric positive definite matrix. Symmetry is exact up to
 * 64·n·ε·max|a_ij| (round-off of a product computed elsewhere); positive definite means
 * λ_min > n·ε·λ_max, i.e. not singular to working precision. Returns the symmetrised matrix.
 */
export function checkCovariance(a: Matrix, n: number, field: string, what: string): Matrix {
  if (a.length !== a[0].length) {
    throw new InputError(field, `must be square, got ${a.length}×${a[0].length}`);
  }
  if (a.length !== n) throw new InputError(field, `must be ${n}×${n} ${what}, got ${a.length}×${a.length}`);
  let maxAbs = 0;
  for (const row of a) for (const v of row) maxAbs = Math.max(maxAbs, Math.abs(v));
  const tol = 64 * n * Number.EPSILON * maxAbs;
  let worst = 0;
  let worstAt: [number, number] | undefined;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const gap = Math.abs(a[i][j] - a[j][i]);
      if (gap > tol && gap > worst) {
        worst = gap;
        worstAt = [i, j];
      }
    }
  }
  if (worstAt) {
    const [i, j] = worstAt;
    throw new InputError(
      `${field}[${i}][${j}]`,
      `${field} must be symmetric, but ${field}[${i}][${j}] = ${a[i][j]} differs from ${field}[${j}][${i}] = ${a[j][i]}`,
    );
  }
  const sym = a.map((row, i) => row.map((v, j) => 0.5 * (v + a[j][i])));
  const { values } = symmetricEigen(toMl(sym));
  const lmin = values[0];
  const lmax = values[values.length - 1];
  if (!(lmax > 0) || !(lmin > n * Number.EPSILON * lmax)) {
    throw new InputError(
      field,
      `must be positive definite, but its smallest eigenvalue is ${Number(lmin.toPrecision(6))} (largest ${Number(lmax.toPrecision(6))})`,
    );
  }
  return sym;
}

function identity(n: number): Matrix {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

/** Parses a depth: an integer 1 ≤ D ≤ MAX_DEPTH. */
export function parseDepth(raw: unknown, field = 'depth'): number {
  if (raw === undefined) throw new InputError(field, 'missing (the number of layers D ≥ 1)');
  if (typeof raw !== 'number' || !Number.isInteger(raw)) {
    throw new InputError(field, `expected an integer ≥ 1, got ${describe(raw)}`);
  }
  if (raw < 1) throw new InputError(field, `must be at least 1, got ${raw}`);
  if (raw > MAX_DEPTH) throw new InputError(field, `must be at most ${MAX_DEPTH}, got ${raw}`);
  return raw;
}

/**
 * Validates `{depth, V, sigmaX?, sigmaEps}` (matrices as arrays of rows; Σ_x defaults to I_d).
 * Unknown keys are rejected (a misspelt `sigmaX` would otherwise silently become the identity)
 * unless `ignoreUnknownKeys` is set. Returns copies, with Σ_x and Σ_ε exactly symmetrised.
 */
export function validateTheoryConfig(
  raw: unknown,
  options: { ignoreUnknownKeys?: boolean } = {},
): TheoryConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError(
      'config',
      `expected a JSON object {depth, V, sigmaX?, sigmaEps}, got ${describe(raw)}`,
    );
  }
  const obj = raw as Record<string, unknown>;
  if (!options.ignoreUnknownKeys) {
    for (const key of Object.keys(obj)) {
      if (!KNOWN_KEYS.includes(key)) {
        throw new InputError(key, `unknown key (known: ${KNOWN_KEYS.join(', ')})`);
      }
    }
  }
  const depth = parseDepth(obj.depth);
  if (obj.V === undefined)
    throw new InputError('V', 'missing (the teacher matrix, m×d, as an array of rows)');
  const V = parseMatrix(obj.V, 'V');
  const m = V.length;
  const d = V[0].length;
  if (V.every((row) => row.every((v) => v === 0))) {
    throw new InputError('V', 'must not be zero (the minimum would be the degenerate W = 0)');
  }
  if (obj.sigmaEps === undefined) {
    throw new InputError('sigmaEps', `missing (the label-noise covariance, ${m}×${m})`);
  }
  const sigmaEps = checkCovariance(
    parseMatrix(obj.sigmaEps, 'sigmaEps'),
    m,
    'sigmaEps',
    `to match V's output dimension m = ${m}`,
  );
  const sigmaX =
    obj.sigmaX === undefined
      ? identity(d)
      : checkCovariance(
          parseMatrix(obj.sigmaX, 'sigmaX'),
          d,
          'sigmaX',
          `to match V's input dimension d = ${d}`,
        );
  return { depth, V: V.map((row) => row.slice()), sigmaX, sigmaEps };
}
