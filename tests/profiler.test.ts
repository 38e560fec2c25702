import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binary, unary } from '../src/kernels/elementwise.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { randomNormal } from '../src/kernels/rng.ts';
import { chromeTrace, formatProfileTable } from '../src/profile/format.ts';
import type { ProfileReport } from '../src/profile/profiler.ts';
import type { Engine, Tensor } from '../src/tensor/engine.ts';
import { destroyTestEngine, testEngine } from './helpers/gpu.ts';

const test = suite('profiler');
test.after(destroyTestEngine);

/**
 * A small mixed workload whose launches we count ourselves: per round one RNG draw, two matmuls, a
 * unary and a binary op. Returns the final tensor (read by the caller) and the launch sequence.
 */
function workload(engine: Engine, rounds: number): { result: Tensor; launched: string[] } {
  const launched: string[] = [];
  let x = randomNormal(engine, [24, 16], { seed: 7, stream: 1, counter: 0 }, { batch: 3 });
  launched.push('rng.normal');
  for (let r = 0; r < rounds; r++) {
    const w = randomNormal(engine, [16, 16], { seed: 7, stream: 2, counter: r }, { std: 0.25 });
    launched.push('rng.normal');
    const h = matmul(engine, x, w);
    launched.push('matmul');
    const t = unary(engine, 'tanh', h);
    launched.push('unary.tanh');
    const y = matmul(engine, t, w, { transposeB: true });
    launched.push('matmul');
    const next = binary(engine, 'add', y, x, { alpha: 0.5, beta: 0.5 });
    launched.push('binary.add');
    for (const d of [w, h, t, y, x]) d.dispose();
    x = next;
  }
  return { result: x, launched };
}

function counts(names: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
}

function checkReport(report: ProfileReport, launched: readonly string[]): void {
  const expected = counts(launched);
  assert.is(report.launches, launched.length, 'one event per launch');
  assert.equal(new Set(report.kernels.map((k) => k.kernel)), new Set(expected.keys()), 'kernel names');
  for (const k of report.kernels) {
    assert.is(k.calls, expected.get(k.kernel), `calls of ${k.kernel}`);
    assert.ok(k.totalMs >= 0 && Number.isFinite(k.totalMs), `${k.kernel} total ${k.totalMs}`);
    // mean = total / calls exactly up to the two roundings of the division and the unit change.
    assert.ok(Math.abs(k.meanUs * k.calls - 1000 * k.totalMs) <= 1e-9 * (1 + 1000 * k.totalMs));
  }
  const sum = report.kernels.reduce((s, k) => s + k.totalMs, 0);
  // Float sums in a different order differ by at most (kernels + launches)·u relative.
  assert.ok(
    Math.abs(sum - report.totalMs) <= 1e-12 * (1 + report.totalMs),
    `Σ kernels ${sum} vs ${report.totalMs}`,
  );
  if (report.totalMs > 0) {
    const shares = report.kernels.reduce((s, k) => s + k.share, 0);
    assert.ok(Math.abs(shares - 1) <= 1e-12, `shares add to ${shares}`);
  }
  for (let i = 1; i < report.kernels.length; i++)
    assert.ok(report.kernels[i - 1].totalMs >= report.kernels[i].totalMs, 'sorted by total');
}

test('GPU timestamps: calls per kernel equal the launches made; durations ≥ 0 add up to the total', async () => {
  const engine = await testEngine();
  if (!engine.profiler.hasTimestamps) {
    console.log('  (adapter has no timestamp-query: the timestamp clock is not exercised here)');
    return;
  }
  engine.profiler.reset();
  const launchesBefore = engine.scheduler.launches;
  engine.profiler.start();
  const { result, launched } = workload(engine, 4);
  await result.read();
  engine.profiler.stop();
  const report = await engine.profiler.report();
  assert.is(report.clock, 'gpu-timestamp');
  assert.is(engine.scheduler.launches - launchesBefore, launched.length, 'the scheduler saw our launches');
  checkReport(report, launched);
  const events = engine.profiler.events;
  assert.equal(
    events.map((e) => e.kernel),
    launched,
    'events in launch order',
  );
  for (const e of events) assert.ok(e.durationUs >= 0 && Number.isFinite(e.startUs), JSON.stringify(e));
  assert.ok(report.totalMs > 0, 'kernels took measurable time');
  assert.match(formatProfileTable(report), /GPU timestamps/);
  result.dispose();
});

test('GPU timestamps: more launches in one flush than one query set holds (1024) are all timed', async () => {
  const engine = await testEngine();
  if (!engine.profiler.hasTimestamps) return;
  engine.profiler.reset();
  engine.profiler.start();
  const x = engine.tensor([1, 2, 3, 4], [4]);
  let y = unary(engine, 'affine', x, { alpha: -1 });
  const submitsBefore = engine.scheduler.submits;
  for (let i = 0; i < 1100; i++) {
    const next = unary(engine, 'affine', y, { alpha: -1 });
    y.dispose();
    y = next;
  }
  const out = await y.read();
  engine.profiler.stop();
  assert.is(engine.scheduler.submits - submitsBefore, 1, 'one flush');
  assert.equal([...out], [-1, -2, -3, -4], '1101 negations of small integers are exact');
  const report = await engine.profiler.report();
  checkReport(report, Array(1101).fill('unary.affine'));
  x.dispose();
  y.dispose();
});

test('wall-clock fallback when forced: each launch its own submit, same counts, header says so', async () => {
  const engine = await testEngine();
  engine.profiler.reset();
  engine.profiler.start({ wallClock: true });
  const submitsBefore = engine.scheduler.submits;
  const { result, launched } = workload(engine, 3);
  await result.read();
  engine.profiler.stop();
  const report = await engine.profiler.report();
  assert.is(report.clock, 'wall-clock');
  assert.ok(engine.scheduler.submits - submitsBefore >= launched.length, 'a submit per launch');
  assert.is(report.submits, launched.length, 'submits carrying launches');
  checkReport(report, launched);
  assert.ok(report.totalMs <= report.wallMs * (1 + 1e-9), 'serialised submits fit inside the wall time');
  assert.match(formatProfileTable(report), /wall clock, no GPU timestamps/);
  assert.throws(() => engine.profiler.start(), /reset\(\) first/, 'clocks are not mixed');
  engine.profiler.reset();
  result.dispose();
});

test('Chrome trace: parses, one X event per launch with its kernel name, µs fields, workgroups', async () => {
  const engine = await testEngine();
  engine.profiler.reset();
  engine.profiler.start();
  const { result, launched } = workload(engine, 2);
  await result.read();
  engine.profiler.stop();
  await engine.profiler.collect();
  const text = JSON.stringify(
    chromeTrace(engine.profiler.events, engine.profiler.clock, { adapter: 'test' }),
  );
  const parsed = JSON.parse(text) as {
    traceEvents: {
      name: string;
      ph: string;
      ts: number;
      dur: number;
      pid: number;
      tid: number;
      args: Record<string, unknown>;
    }[];
  };
  const complete = parsed.traceEvents.filter((e) => e.ph === 'X');
  assert.equal(
    complete.map((e) => e.name),
    launched,
  );
  for (const e of complete) {
    assert.ok(Number.isFinite(e.ts) && e.dur >= 0, `ts ${e.ts} dur ${e.dur}`);
    assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid));
    assert.match(String(e.args.workgroups), /^\d+×\d+×\d+$/);
  }
  const mm = complete.find((e) => e.name === 'matmul');
  assert.match(String(mm?.args.pipeline), /^matmul\[/);
  assert.match(String(mm?.args.shader), /^matmul.*\.wgsl$/);
  result.dispose();
});

test('profiling does not change results (bit-identical, both clocks)', async () => {
  const engine = await testEngine();
  engine.profiler.reset();
  const bits = async () => {
    const { result } = workload(engine, 5);
    const data = new Uint32Array(((await result.read()) as Float32Array).buffer.slice(0));
    result.dispose();
    return data;
  };
  const plain = await bits();
  engine.profiler.start();
  const timed = await bits();
  engine.profiler.stop();
  engine.profiler.reset();
  engine.profiler.start({ wallClock: true });
  const walled = await bits();
  engine.profiler.stop();
  engine.profiler.reset();
  assert.equal([...timed], [...plain], 'timestamp profiling');
  assert.equal([...walled], [...plain], 'wall-clock profiling');
});

test.run();
