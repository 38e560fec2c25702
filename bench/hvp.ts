/**
 * Cost of a Hessian-vector product relative to a gradient, per model, on one fixed batch:
 * time(forward + HVP by double backward) / time(forward + backward). Reverse-over-reverse costs a
 * small constant number of gradients; the target is ≤ 3.
 */
import { Tape } from '../src/autodiff/tape.ts';
import { randomNormal } from '../src/kernels/rng.ts';
import { initParameters } from '../src/models/init.ts';
import { lossFunction } from '../src/models/losses.ts';
import { benchSetups } from './models.ts';
import type { BenchContext, BenchResult, BenchSuite } from './suite.ts';
import { measure } from './timing.ts';

export interface HvpResult extends BenchResult {
  model: string;
  gradientMs: number;
  hvpMs: number;
  ratio: number;
}

async function run(context: BenchContext): Promise<HvpResult[]> {
  const { engine } = context;
  const results: HvpResult[] = [];
  for (const setup of benchSetups()) {
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
    const gradient = await measure(once(false), { minSeconds: context.minSeconds, minReps: 5 });
    const hvp = await measure(once(true), { minSeconds: context.minSeconds, minReps: 5 });
    results.push({
      engine: 'sharpness-lab',
      shape: [replicas, setup.batchSize],
      gflops: null,
      model: setup.name,
      gradientMs: gradient.median * 1000,
      hvpMs: hvp.median * 1000,
      ratio: hvp.median / gradient.median,
    });
    for (const t of [...params, ...vectors, batch.x, batch.y]) t.dispose();
    data.dispose();
  }
  return results;
}

function formatTable(results: readonly BenchResult[]): string {
  const rows = results as HvpResult[];
  const header = `${'model'.padEnd(34)}${'batch'.padStart(7)}${'gradient ms'.padStart(13)}${'HVP ms'.padStart(10)}${'HVP/grad'.padStart(10)}`;
  const lines = rows.map(
    (r) =>
      `${r.model.padEnd(34)}${String(r.shape[1]).padStart(7)}${r.gradientMs.toFixed(2).padStart(13)}${r.hvpMs.toFixed(2).padStart(10)}${r.ratio.toFixed(2).padStart(10)}`,
  );
  return [
    'Hessian-vector product vs gradient (forward included in both)',
    header,
    '-'.repeat(header.length),
    ...lines,
  ].join('\n');
}

export const suite: BenchSuite = { run, formatTable };
