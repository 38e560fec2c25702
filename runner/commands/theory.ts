// `sharpness-lab theory`: closed-form sharpness and gradient fluctuation of the SGD-selected minimum
// of a deep linear network (src/theory), with an independent numerical check on the symmetry orbit.
import { readFileSync } from 'node:fs';
import { InputError } from '../../src/errors.ts';
import { type DeepLinearTheory, deepLinearTheory, initSharpness } from '../../src/theory/deep-linear.ts';
import { parameterCount } from '../../src/theory/hessian.ts';
import { minimiseOrbit, type OrbitResult, orbitDistance } from '../../src/theory/orbit.ts';
import { validateTheoryConfig } from '../../src/theory/validate.ts';
import { type FlagSpec, formatFlagHelp, parseArgs } from '../args.ts';

const flags: FlagSpec[] = [
  { name: 'config', kind: 'string', help: 'JSON file {"depth", "V", "sigmaX"?, "sigmaEps"} (required)' },
  { name: 'json', kind: 'boolean', help: 'print exactly one JSON object instead of a table' },
  { name: 'seed', kind: 'number', help: "seed of the orbit check's random factorisation (default 1)" },
  { name: 'skip-check', kind: 'boolean', help: 'skip the numerical orbit minimisation' },
  {
    name: 'init-scale',
    kind: 'number',
    help: 'also report E[T] at an i.i.d. N(0, s²) initialisation of scale s',
  },
  { name: 'init-width', kind: 'number', help: 'hidden width h for --init-scale (default: rank V)' },
];

export const usage = `usage: sharpness-lab theory --config FILE [--json] [options]

Closed-form sharpness T* = Tr H, per-sample gradient fluctuation S*, largest Hessian eigenvalue
λ_max* and predicted weights of the global minimum that SGD selects in a deep linear network
f(x) = W_D ⋯ W_1 x (loss ½‖f(x) − y‖², x ~ N(0, Σ_x), y = V x + ε, ε ~ N(0, Σ_ε)), plus the
flattest-minimum sharpness T_min. Unless --skip-check, the minimum is also found numerically
(L-BFGS over the symmetry orbit of a random factorisation of V) and compared with the closed form.

FILE: {"depth": D, "V": [[…]], "sigmaX": [[…]], "sigmaEps": [[…]]} with matrices as arrays of rows;
V is m×d, sigmaX (d×d, default identity) and sigmaEps (m×m) symmetric positive definite.

options:
${formatFlagHelp(flags)}

Exit codes: 0 success, 2 bad input (the message names the field), 1 anything else.`;

interface OrbitReport {
  seed: number;
  fluctuation: number;
  sharpness: number;
  relativeErrorFluctuation: number;
  relativeErrorSharpness: number;
  /** Rotation-invariant distance of the reached weights to the closed-form weights. */
  distance: number;
  iterations: number;
  converged: boolean;
  gradientNorm: number;
}

function readConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new InputError('--config', `cannot read '${path}' (${code})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError('--config', `'${path}' is not valid JSON: ${(error as Error).message}`);
  }
}

function integerFlag(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InputError(`--${name}`, `expected an integer ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

function relativeError(x: number, ref: number): number {
  return Math.abs(x - ref) / Math.abs(ref);
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) >= 1e7 || Math.abs(x) < 1e-4)) return x.toExponential(6);
  return String(Number(x.toPrecision(7)));
}

function table(
  theory: DeepLinearTheory,
  orbit: OrbitReport | undefined,
  init: InitReport | undefined,
): string {
  const { depth, outputDim: m, inputDim: d, rank } = theory;
  const rows: [string, string][] = [
    ['sharpness T* = Tr H (SGD-selected minimum)', fmt(theory.sharpness)],
    ['gradient fluctuation S* = E‖∇ℓ‖² (per sample)', fmt(theory.fluctuation)],
    ['largest Hessian eigenvalue λ_max*', fmt(theory.lambdaMax)],
    ['flattest sharpness on the manifold T_min', fmt(theory.minSharpness)],
  ];
  if (init) rows.push([`E[T] at initialisation (s = ${init.scale}, h = ${init.width})`, fmt(init.sharpness)]);
  const lines = [
    `deep linear network: depth ${depth}, V ${m}×${d} (rank ${rank}), ${parameterCount(theory.weights)} parameters at the predicted weights`,
    `Tr Σ_x = ${fmt(theory.traceSigmaX)}, Tr Σ_ε = ${fmt(theory.traceSigmaEps)}, ‖Σ_ε^½ V Σ_x^½‖_* = ${fmt(theory.nuclearNorm)}, τ = ${fmt(theory.tau)}`,
    '',
    ...rows.map(([k, v]) => `  ${k.padEnd(50)}${v}`),
  ];
  if (orbit) {
    lines.push(
      '',
      `orbit check (L-BFGS from a random factorisation, seed ${orbit.seed}): ${orbit.iterations} iterations, ${orbit.converged ? 'converged' : 'NOT converged'}`,
      `  ${'S reached'.padEnd(50)}${fmt(orbit.fluctuation)}  (relative error ${orbit.relativeErrorFluctuation.toExponential(1)})`,
      `  ${'T reached'.padEnd(50)}${fmt(orbit.sharpness)}  (relative error ${orbit.relativeErrorSharpness.toExponential(1)})`,
      `  ${'distance to the closed-form weights'.padEnd(50)}${orbit.distance.toExponential(1)}`,
    );
  }
  return lines.join('\n');
}

interface InitReport {
  scale: number;
  width: number;
  sharpness: number;
}

export async function main(argv: string[]): Promise<number> {
  const { positional, flags: f } = parseArgs(argv, flags);
  if (positional.length > 0) throw new InputError(positional[0], 'unexpected argument (see --help)');
  if (typeof f.config !== 'string' || f.config === '')
    throw new InputError('--config', 'required: a JSON file');
  const seed = integerFlag(f.seed, 'seed', 0) ?? 1;
  const width = integerFlag(f['init-width'], 'init-width', 1);
  const scale = f['init-scale'] as number | undefined;
  if (scale !== undefined && scale < 0)
    throw new InputError('--init-scale', `expected a number ≥ 0, got ${scale}`);
  if (width !== undefined && scale === undefined)
    throw new InputError('--init-width', 'only meaningful with --init-scale');

  const config = validateTheoryConfig(readConfig(f.config));
  const theory = deepLinearTheory(config);

  let orbit: OrbitReport | undefined;
  if (!f['skip-check']) {
    const result: OrbitResult = minimiseOrbit({ ...config, seed });
    orbit = {
      seed,
      fluctuation: result.fluctuation,
      sharpness: result.sharpness,
      relativeErrorFluctuation: relativeError(result.fluctuation, theory.fluctuation),
      relativeErrorSharpness: relativeError(result.sharpness, theory.sharpness),
      distance: orbitDistance(result.weights, theory.weights),
      iterations: result.iterations,
      converged: result.converged,
      gradientNorm: result.gradientNorm,
    };
    if (!result.converged) console.error('sharpness-lab: warning: the orbit minimisation did not converge');
  }
  let init: InitReport | undefined;
  if (scale !== undefined) {
    const h = width ?? theory.rank;
    init = {
      scale,
      width: h,
      sharpness: initSharpness({
        depth: theory.depth,
        outputDim: theory.outputDim,
        traceSigmaX: theory.traceSigmaX,
        width: h,
        scale,
      }),
    };
  }

  if (f.json) {
    console.log(JSON.stringify({ ...theory, parameterCount: parameterCount(theory.weights), orbit, init }));
  } else {
    console.log(table(theory, orbit, init));
  }
  return 0;
}
