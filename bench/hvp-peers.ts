/**
 * Hessian-vector products of ours and of @jax-js/jax (jvp of grad) on the same parameters, data and
 * vector, checked against each other and then timed interleaved. A host-agnostic engine job
 * (bench/browser/page.ts 'hvp-peers'): in Node it runs on our Dawn engine beside jax-js's wasm
 * backend, in the page on the page's engine beside jax-js's webgpu backend (same adapter, checked).
 */
import { Tape } from '../src/autodiff/tape.ts';
import { HessianOperator, type LossClosure } from '../src/curvature/operator.ts';
import { fusedCurvature } from '../src/kernels/fused-hvp.ts';
import { lossFunction } from '../src/models/losses.ts';
import { buildModel } from '../src/models/model.ts';
import type { Engine, Tensor } from '../src/tensor/engine.ts';
import type { JaxHvpCase } from './jax-models.ts';
import { measureInterleaved } from './timing.ts';

/**
 * |H·v (jax-js) − H·v (ours)| / max |H·v (ours)| allowed: both are float32 evaluations of the same
 * sums (≤ a few hundred terms per entry, a few layers deep), whose rounding is ~1e-6 relative; a
 * wrong term or transpose gives O(1).
 */
export const HVP_PEER_TOLERANCE = 1e-3;

export interface HvpPeerCase extends JaxHvpCase {
  name: string;
}

export interface HvpPeersParams {
  cases: HvpPeerCase[];
  /** jax-js backend to compare with: 'wasm' (Node) or 'webgpu' (the page). */
  jaxDevice: 'wasm' | 'webgpu';
  minSeconds: number;
}

export interface HvpPeerTiming {
  name: string;
  parameters: number;
  /** Our H·v (the fused kernel where it covers the model, else forward + double backward), until the GPU has finished. */
  oursMs: number | null;
  /** jax-js's jitted jvp(grad) until its result is ready (blockUntilReady). */
  jaxMs: number | null;
  /** max |jax − ours| / max |ours| of the checked H·v; null when jax-js did not run. */
  agreement: number | null;
  /** Why jax-js has no number (its error message, or the failed check). */
  jaxError?: string;
  oursError?: string;
}

export interface HvpPeersResult {
  jaxDevice: string;
  /** The adapter jax-js's webgpu backend opened (vendor/architecture), when it is the peer. */
  jaxAdapter?: string;
  cases: HvpPeerTiming[];
  /** Set when jax-js could not start at all (every case then has it as jaxError). */
  jaxInitError?: string;
}

function relativeDifference(got: Float32Array[], want: Float32Array[]): number {
  let err = 0;
  let scale = 0;
  want.forEach((w, i) => {
    if (got[i]?.length !== w.length) err = Number.POSITIVE_INFINITY;
    for (let j = 0; j < w.length; j++) {
      const d = Math.abs(got[i][j] - w[j]);
      err = d > err || Number.isNaN(d) ? d : err;
      scale = Math.max(scale, Math.abs(w[j]));
    }
  });
  return Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / (scale || 1);
}

const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0];

/**
 * Our H·v on one case, uploaded once. Where the fused kernel covers the model (small deep linear nets
 * and MLPs: src/kernels/fused-hvp.ts) it is the library's H·v as `hessian().apply` and the experiments
 * run it, a HessianOperator's `apply` (parameters packed, one kernel, the product unpacked); otherwise
 * each run builds the tape and runs forward + double backward.
 */
function oursHvp(engine: Engine, c: HvpPeerCase) {
  const model = buildModel(c.spec);
  const params = c.params.map((p, i) => engine.tensor(p, c.shapes[i], { label: `hvp ${c.name} param` }));
  const vectors = c.vector.map((v, i) => engine.tensor(v, c.shapes[i], { label: `hvp ${c.name} v` }));
  const x = engine.tensor(c.x, [c.rows, c.x.length / c.rows]);
  const y = engine.tensor(c.y, [c.rows, c.y.length / c.rows]);
  const lossOf = lossFunction(c.loss);
  const closure: LossClosure = (tape, vars, data) => lossOf(tape, model.forward(tape, vars, data.x), data.y);
  const fused = fusedCurvature(c.spec, c.loss);
  const operator =
    fused?.kind === 'narrow'
      ? HessianOperator.create(engine, { params, loss: closure, evaluation: { data: { x, y } }, fused })
      : undefined;
  const launch = (tape: Tape): Tensor[] => {
    if (operator) return operator.apply(vectors);
    const vars = params.map((p) => tape.param(p));
    return tape
      .hvp(closure(tape, vars, { x: tape.constant(x), y: tape.constant(y) }), vars, vectors)
      .map((h) => h.value);
  };
  return {
    async run() {
      const tape = new Tape(engine);
      const out = launch(tape);
      await engine.sync();
      if (operator) for (const t of out) t.dispose();
      tape.dispose();
    },
    async result(): Promise<Float32Array[]> {
      const tape = new Tape(engine);
      const products = launch(tape);
      const out = await Promise.all(products.map((h) => h.read() as Promise<Float32Array>));
      if (operator) for (const t of products) t.dispose();
      tape.dispose();
      return out;
    },
    dispose() {
      operator?.dispose();
      for (const t of [...params, ...vectors, x, y]) t.dispose();
    },
  };
}

export async function hvpPeersJob(
  engine: Engine,
  params: HvpPeersParams,
  io: { log(line: string): void },
): Promise<HvpPeersResult> {
  const result: HvpPeersResult = { jaxDevice: params.jaxDevice, cases: [] };
  let jax: typeof import('./jax-models.ts') | undefined;
  try {
    jax = await import('./jax-models.ts');
    await jax.initJax(params.jaxDevice);
    if (params.jaxDevice === 'webgpu') {
      const theirs = jax.jaxWebgpuAdapter();
      const ours = engine.context.adapterInfo;
      result.jaxAdapter = `${theirs.vendor}/${theirs.architecture}`;
      if (theirs.vendor !== ours.vendor || theirs.architecture !== ours.architecture)
        throw new Error(
          `jax-js webgpu opened ${result.jaxAdapter}, not our adapter ${ours.vendor}/${ours.architecture}; refusing to compare`,
        );
    }
  } catch (error) {
    result.jaxInitError = `jax-js ${params.jaxDevice}: ${firstLine(error)}`;
    jax = undefined;
  }
  for (const c of params.cases) {
    const parameters = c.params.reduce((n, p) => n + p.length, 0);
    const timing: HvpPeerTiming = { name: c.name, parameters, oursMs: null, jaxMs: null, agreement: null };
    result.cases.push(timing);
    io.log(`hvp peers (${params.jaxDevice}): ${c.name}, ${parameters} parameters`);
    const ours = oursHvp(engine, c);
    let peer: ReturnType<typeof import('./jax-models.ts').jaxHvp> | undefined;
    try {
      let want: Float32Array[];
      try {
        want = await ours.result(); // also our warm-up
      } catch (error) {
        timing.oursError = firstLine(error);
        continue;
      }
      if (!jax) timing.jaxError = result.jaxInitError;
      else {
        try {
          peer = jax.jaxHvp(c);
          const got = await peer.result(); // also jax-js's warm-up (jit compile)
          timing.agreement = relativeDifference(got, want);
          if (!(timing.agreement <= HVP_PEER_TOLERANCE)) {
            timing.jaxError = `jax-js H·v differs from ours: max relative difference ${timing.agreement.toExponential(2)}`;
            peer.dispose();
            peer = undefined;
          }
        } catch (error) {
          timing.jaxError = `jax-js ${params.jaxDevice}: ${firstLine(error)}`;
          peer?.dispose();
          peer = undefined;
        }
      }
      const reps = peer ? [ours.run, peer.run] : [ours.run];
      const [oursTime, jaxTime] = await measureInterleaved(reps, {
        minSeconds: params.minSeconds,
        minReps: 3,
      });
      timing.oursMs = oursTime.median * 1000;
      if (jaxTime) timing.jaxMs = jaxTime.median * 1000;
    } finally {
      ours.dispose();
      peer?.dispose();
    }
  }
  return result;
}
