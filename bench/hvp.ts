/**
 * Hessian-vector products per model on one fixed batch. Ours: time(forward + HVP by double backward)
 * / time(forward + backward) — reverse-over-reverse costs a small constant number of gradients — and
 * the amortised H·v at a taped point (forward and gradient reused: the curvature operator's Lanczos and
 * probe loops) over the same gradient.
 * Peers: @jax-js/jax's jitted jvp(grad) on the same parameters, data and vector (bench/hvp-peers.ts),
 * checked equal to ours first, then timed interleaved with ours — its wasm backend here in Node,
 * its webgpu backend in Chromium on the same adapter (the browser runner, beside our page engine).
 */
import { Tape } from '../src/autodiff/tape.ts';
import { randomNormal } from '../src/kernels/rng.ts';
import { initParameters } from '../src/models/init.ts';
import { lossFunction } from '../src/models/losses.ts';
import { markdownTable } from './format.ts';
import type { HvpPeerCase, HvpPeersResult } from './hvp-peers.ts';
import { hvpPeersJob } from './hvp-peers.ts';
import { benchSetups } from './models.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { measure } from './timing.ts';

export interface HvpResult extends BenchResult {
  model: string;
  parameters: number;
  gradientMs: number;
  hvpMs: number;
  ratio: number;
  /** H·v at a taped point (forward and gradient reused, as HessianOperator.atPoint runs Lanczos and probes). */
  atPointMs: number;
  atPointRatio: number;
  /** Each peer run: ours and jax-js timed interleaved on one host (null: no number, see errors). */
  oursNodeMs: number | null;
  jaxWasmMs: number | null;
  oursBrowserMs: number | null;
  jaxWebgpuMs: number | null;
  /** max |jax − ours| / max |ours| of H·v, per jax-js backend. */
  agreement: { wasm: number | null; webgpu: number | null };
  /** Why a peer column is empty: jax-js's or the browser's own error message. */
  peerErrors: string[];
}

async function run(context: BenchContext): Promise<HvpResult[]> {
  const { engine } = context;
  const results: HvpResult[] = [];
  const cases: HvpPeerCase[] = [];
  for (const setup of benchSetups(context)) {
    context.log(`hvp: ${setup.name}`);
    const data = setup.data(engine);
    const replicas = 1;
    const params = initParameters(
      engine,
      setup.model,
      { kind: setup.model.spec.kind === 'mlp' ? 'kaiming' : 'xavier' },
      { replicas, seed: 1 },
    );
    const batch = data.sample({ seed: 2, step: 0, rows: setup.batchSize, replicas });
    const vectors = setup.model.parameters.map((p, i) =>
      randomNormal(engine, p.shape, { seed: 3, stream: 9, counter: i }, { batch: replicas }),
    );
    const lossOf = lossFunction(setup.loss);
    const once = (withHvp: boolean) => async () => {
      const tape = new Tape(engine);
      const vars = params.map((p) => tape.param(p));
      const loss = lossOf(
        tape,
        setup.model.forward(tape, vars, tape.constant(batch.x)),
        tape.constant(batch.y),
      );
      if (withHvp) tape.hvp(loss, vars, vectors);
      else tape.grad(loss, vars);
      await engine.sync();
      tape.dispose();
    };
    const read = (t: { read(): Promise<unknown> }) => t.read() as Promise<Float32Array>;
    cases.push({
      name: setup.name,
      spec: setup.model.spec,
      loss: setup.loss,
      params: await Promise.all(params.map(read)),
      vector: await Promise.all(vectors.map(read)),
      x: await read(batch.x),
      y: await read(batch.y),
      rows: setup.batchSize,
      shapes: setup.model.parameters.map((p) => p.shape),
    });
    const gradient = await measure(once(false), { minSeconds: context.minSeconds, minReps: 5 });
    const hvp = await measure(once(true), { minSeconds: context.minSeconds, minReps: 5 });
    // The amortised cost: one forward pass and gradient taped, then only the second reverse pass per vector.
    const point = new Tape(engine);
    const pointVars = params.map((p) => point.param(p));
    const pointLoss = lossOf(
      point,
      setup.model.forward(point, pointVars, point.constant(batch.x)),
      point.constant(batch.y),
    );
    const pointGradients = point.grad(pointLoss, pointVars);
    const atPoint = await measure(
      async () => {
        const mark = point.mark();
        point.hvpAt(pointGradients, pointVars, vectors);
        await engine.sync();
        point.release(mark);
      },
      { minSeconds: context.minSeconds, minReps: 5 },
    );
    point.dispose();
    results.push({
      engine: 'sharpness-lab',
      shape: [replicas, setup.batchSize],
      gflops: null,
      model: setup.name,
      parameters: setup.model.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
      gradientMs: gradient.median * 1000,
      hvpMs: hvp.median * 1000,
      ratio: hvp.median / gradient.median,
      atPointMs: atPoint.median * 1000,
      atPointRatio: atPoint.median / gradient.median,
      oursNodeMs: null,
      jaxWasmMs: null,
      oursBrowserMs: null,
      jaxWebgpuMs: null,
      agreement: { wasm: null, webgpu: null },
      peerErrors: [],
    });
    for (const t of [...params, ...vectors, batch.x, batch.y]) t.dispose();
    data.dispose();
  }
  await addPeers(context, cases, results);
  return results;
}

/** Runs the jax-js peers (wasm here, webgpu in the page) and fills their columns. */
async function addPeers(context: BenchContext, cases: HvpPeerCase[], results: HvpResult[]): Promise<void> {
  const fill = (run: HvpPeersResult, host: 'node' | 'browser') => {
    for (const timing of run.cases) {
      const r = results.find((x) => x.model === timing.name);
      if (!r) continue;
      const jax = run.jaxDevice as 'wasm' | 'webgpu';
      if (host === 'node') [r.oursNodeMs, r.jaxWasmMs] = [timing.oursMs, timing.jaxMs];
      else [r.oursBrowserMs, r.jaxWebgpuMs] = [timing.oursMs, timing.jaxMs];
      r.agreement[jax] = timing.agreement;
      for (const e of [timing.jaxError, timing.oursError && `ours (${host}): ${timing.oursError}`])
        if (e) r.peerErrors.push(e.startsWith('jax-js') || e.startsWith('ours') ? e : `jax-js ${jax}: ${e}`);
    }
  };
  const log = (line: string) => context.log(line);
  context.log('hvp: jax-js wasm peer in this process');
  fill(
    await hvpPeersJob(context.engine, { cases, jaxDevice: 'wasm', minSeconds: context.minSeconds }, { log }),
    'node',
  );
  context.log('hvp: ours and jax-js webgpu in Chromium (browser runner)');
  try {
    if (!context.runInPage) throw new Error('the bench command gave no browser runner');
    const params = { cases, jaxDevice: 'webgpu', minSeconds: context.minSeconds };
    fill((await context.runInPage('hvp-peers', params, log)) as HvpPeersResult, 'browser');
  } catch (error) {
    const message = `browser: ${(error as Error).message.split('\n')[0]}`;
    for (const r of results) r.peerErrors.push(message);
  }
}

const ms = (v: number | null) => (v === null ? '—' : v.toFixed(2));
const times = (a: number | null, b: number | null) => (a && b ? `${(a / b).toFixed(2)}×` : '—');

function formatTable(results: readonly BenchResult[]): string {
  const rows = results as HvpResult[];
  const ours = markdownTable(
    ['model', 'params', 'batch', 'gradient ms', 'HVP ms', 'HVP/grad', 'HVP at point ms', 'at point/grad'],
    rows.map((r) => [
      r.model,
      String(r.parameters),
      String(r.shape[1]),
      r.gradientMs.toFixed(2),
      r.hvpMs.toFixed(2),
      r.ratio.toFixed(2),
      r.atPointMs.toFixed(2),
      r.atPointRatio.toFixed(2),
    ]),
  );
  const peers = markdownTable(
    [
      'model',
      'params',
      'ours (Node Dawn)',
      'ours (browser)',
      'jax-js webgpu (browser)',
      'jax-js wasm (Node)',
      'jax-js webgpu / ours (browser)',
      'jax-js wasm / ours (Node)',
    ],
    rows.map((r) => [
      r.model,
      String(r.parameters),
      ms(r.oursNodeMs),
      ms(r.oursBrowserMs),
      ms(r.jaxWebgpuMs),
      ms(r.jaxWasmMs),
      times(r.jaxWebgpuMs, r.oursBrowserMs),
      times(r.jaxWasmMs, r.oursNodeMs),
    ]),
  );
  const errors = [...new Set(rows.flatMap((r) => r.peerErrors.map((e) => `- ${r.model}: ${e}`)))];
  const agreement = rows.map(
    (r) =>
      `${r.model}: wasm ${r.agreement.wasm?.toExponential(1) ?? '—'}, webgpu ${r.agreement.webgpu?.toExponential(1) ?? '—'}`,
  );
  return [
    'Hessian-vector product vs gradient (ours, Node; forward included in both)',
    '',
    ours,
    '',
    'H·v beside jax-js (jitted jvp of grad), ms per H·v until complete; each pair timed interleaved on one host; ratio > 1: ours faster',
    '',
    peers,
    '',
    `agreement with our H·v (max |jax − ours| / max |ours|): ${agreement.join('; ')}`,
    ...(errors.length > 0 ? ['', 'peers without a number:', ...errors] : []),
  ].join('\n');
}

export const suite: BenchSuite = { run, formatTable };
