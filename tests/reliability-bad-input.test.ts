// The bad-input corpus (tests/fixtures/bad/cases.json) through the real CLI: every case exits with
// code 2 and one stderr line naming the field, before any GPU work (no adapter notice), writing nothing.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../src/errors.ts';
import {
  bufferNeeds,
  checkDeviceLimits,
  prepareExperiment,
  validateExperiment,
} from '../src/experiments/config.ts';
import { runCli } from './helpers/cli.ts';

const test = suite('reliability: bad input');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'tests', 'fixtures', 'bad');

interface FileSpec {
  path: string;
  text?: string;
  from?: string;
  patch?: unknown;
}
interface Case {
  name: string;
  args: string[];
  files?: FileSpec[];
  field: string;
  text?: string;
}

const { cases } = JSON.parse(readFileSync(join(fixtures, 'cases.json'), 'utf8')) as { cases: Case[] };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge: objects key by key, null deletes, anything else replaces. */
function merge(base: unknown, patch: unknown): unknown {
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = merge(base[key], value);
  }
  return out;
}

function fileContent(spec: FileSpec): string {
  if (spec.text !== undefined) return spec.text;
  const base = JSON.parse(readFileSync(join(fixtures, spec.from ?? 'base-config.json'), 'utf8'));
  return JSON.stringify(merge(base, spec.patch ?? {}), null, 2);
}

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(prefix, entry.name);
    return entry.isDirectory() ? [`${path}/`, ...listFiles(join(dir, entry.name), path)] : [path];
  });
}

// Bad input is rejected in well under a second of work; a hang means it got past validation.
const cli = (args: string[], cwd: string) => runCli(args, { cwd, timeoutMs: 60_000 });

test('the corpus has at least 30 cases and covers every command', () => {
  assert.ok(cases.length >= 30, `${cases.length} cases`);
  const commands = new Set(cases.map((c) => c.args[0]));
  for (const command of ['run', 'theory', 'config', 'report', 'bench', 'info', 'merge', 'tune', 'start'])
    assert.ok(commands.has(command), `no case for '${command}'`);
  assert.is(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique');
});

test('every bad input exits 2 with one line naming the field, before GPU work, writing nothing', async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-bad-'));
  const failures: string[] = [];
  try {
    const runCase = async (c: Case, index: number) => {
      const cwd = join(work, String(index));
      mkdirSync(cwd);
      for (const file of c.files ?? []) {
        mkdirSync(dirname(join(cwd, file.path)), { recursive: true });
        writeFileSync(join(cwd, file.path), fileContent(file));
      }
      const before = listFiles(cwd);
      const sizes = before.map((p) => (p.endsWith('/') ? 0 : statSync(join(cwd, p)).size));
      const result = await cli(c.args, cwd);
      const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
      const problems: string[] = [];
      if (result.code !== 2) problems.push(`exit code ${result.code}`);
      if (lines.length !== 1) problems.push(`${lines.length} stderr lines`);
      const message = lines[0] ?? '';
      if (!message.startsWith('sharpness-lab: ')) problems.push('message lacks the sharpness-lab: prefix');
      if (!message.includes(c.field)) problems.push(`message does not name '${c.field}'`);
      if (c.text !== undefined && !message.includes(c.text)) problems.push(`message lacks '${c.text}'`);
      // The field plus a reason: more than a bare field name.
      if (message.length < `sharpness-lab: ${c.field}`.length + 12) problems.push('message gives no reason');
      if (/SwiftShader|GPU adapter/i.test(result.stderr)) problems.push('reached the GPU adapter');
      if (result.stdout !== '') problems.push(`printed on stdout: ${result.stdout.slice(0, 80)}`);
      const after = listFiles(cwd);
      const afterSizes = after.map((p) => (p.endsWith('/') ? 0 : statSync(join(cwd, p)).size));
      if (JSON.stringify([after, afterSizes]) !== JSON.stringify([before, sizes]))
        problems.push(`files changed: ${after.filter((p) => !before.includes(p)).join(', ') || 'sizes'}`);
      if (problems.length > 0)
        failures.push(
          `${c.name} [${c.args.join(' ')}]: ${problems.join('; ')}\n    stderr: ${result.stderr.trim()}`,
        );
    };
    // Two at a time: the machine is shared.
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const index = next++;
        await runCase(cases[index], index);
      }
    };
    await Promise.all([worker(), worker()]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  assert.ok(
    failures.length === 0,
    `${failures.length} of ${cases.length} cases failed:\n${failures.join('\n')}`,
  );
});

test("sizes beyond a device's buffer limit are bad input naming the field that sets them", () => {
  const base = JSON.parse(readFileSync(join(fixtures, 'base-config.json'), 'utf8'));
  const limits = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 31 };
  // Evaluation set: seeds × rows × 2 features × 4 bytes; 3 seeds × 2²⁶ rows = 1.5 GiB > 1 GiB.
  const big = prepareExperiment(merge(base, { measure: { evaluationSamples: 2 ** 26 } }));
  const need = bufferNeeds(validateExperiment(big)[0]).find((n) => n.field === 'measure.evaluationSamples');
  assert.is(need?.bytes, 3 * 2 ** 26 * 2 * 4);
  try {
    checkDeviceLimits(big, limits);
    assert.unreachable('1.5 GiB passed a 1 GiB limit');
  } catch (error) {
    assert.instance(error, InputError);
    assert.is((error as InputError).field, 'measure.evaluationSamples');
    assert.match((error as Error).message, /1\.5 GiB .*maxStorageBufferBindingSize of 1 GiB/);
  }
  // Exactly at the limit (2 seeds: 1 GiB) passes.
  const fits = prepareExperiment(merge(base, { seeds: 2, measure: { evaluationSamples: 2 ** 26 } }));
  checkDeviceLimits(fits, limits);
  // A group override that makes it too large is named where it was written.
  const grouped = prepareExperiment(
    merge(base, {
      groups: [
        { name: 'a' },
        { name: 'b', overrides: { seeds: 8, measure: { evaluationSamples: 2 ** 25 } } },
      ],
    }),
  );
  try {
    checkDeviceLimits(grouped, limits);
    assert.unreachable('2 GiB passed a 1 GiB limit');
  } catch (error) {
    assert.is((error as InputError).field, 'groups[1].overrides.measure.evaluationSamples');
  }
});

test("run: a config beyond this adapter's buffer limit exits 2 after finding the adapter, before any GPU work", async () => {
  const work = mkdtempSync(join(tmpdir(), 'sharpness-lab-limit-'));
  try {
    const info = await cli(['info', '--json'], work);
    assert.is(info.code, 0, info.stderr);
    const limits = JSON.parse(info.stdout).limits;
    const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    // The base config's two groups differ only in noise: they train as one batch of 6 replicas whose
    // evaluation set takes 6 × rows × 2 features × 4 bytes.
    const rows = Math.ceil((1.5 * limit) / 48);
    if (48 * rows >= 4 * (2 ** 32 - 1)) {
      console.log(`  (skipped: this adapter's limit ${limit} is within 2/3 of the u32-index bound)`);
      return;
    }
    const base = JSON.parse(readFileSync(join(fixtures, 'base-config.json'), 'utf8'));
    writeFileSync(
      join(work, 'c.json'),
      JSON.stringify(merge(base, { measure: { evaluationSamples: rows } })),
    );
    const result = await cli(['run', 'c.json', '--out', 'out'], work);
    assert.is(result.code, 2, result.stderr);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '' && !/SwiftShader/.test(line));
    assert.is(lines.length, 1, result.stderr);
    assert.match(lines[0], /^sharpness-lab: measure\.evaluationSamples: needs a .* buffer \(6 replicas × /);
    assert.match(lines[0], /this device's max/);
    assert.equal(readdirSync(work), ['c.json']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
