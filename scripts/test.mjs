#!/usr/bin/env node
// `npm test`: type-check, lint, then every tests/**/*.test.ts in its own process (each owns one GPU
// device for its lifetime). Prints a closing line `N passed, N failed` over all uvu tests, with the
// type-check and lint counted as one test each. `npm test -- matmul rng` runs matching files only.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);
const FILE_TIMEOUT_MS = Number(process.env.SHARPNESS_LAB_TEST_TIMEOUT_MS ?? 600_000);

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return entry.name === 'helpers' || entry.name === 'fixtures' ? [] : findTests(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

function run(command, args, { capture = true } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const onData = (chunk) => {
      output += chunk;
      if (!capture) process.stdout.write(chunk);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      output += `\n(killed after ${FILE_TIMEOUT_MS / 1000} s)\n`;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 1 : 0), output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
let passed = 0;
let failed = 0;
const failures = [];

async function check(name, command, args) {
  const result = await run(command, args);
  const ok = result.code === 0;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${result.seconds.toFixed(1)} s)`);
  if (ok) passed++;
  else {
    failed++;
    failures.push(name);
    console.log(result.output.trim().split('\n').slice(-60).join('\n'));
  }
}

if (filters.length === 0) {
  await check('typecheck (tsc --noEmit)', bin('tsc'), ['--noEmit', '-p', '.']);
  await check('lint (biome check)', bin('biome'), ['check', '.']);
}

const files = findTests(join(root, 'tests'))
  .sort()
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)));
for (const file of files) {
  const name = relative(root, file);
  const result = await run(process.execPath, ['--import', 'tsx', file]);
  const total = Number(/Total:\s+(\d+)/.exec(result.output)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(result.output)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(result.output)?.[1] ?? 0);
  // A file that crashed before uvu's summary counts as one failure.
  const bad = result.code !== 0 && total === 0 ? 1 : total - ok - skipped;
  passed += ok;
  failed += bad;
  console.log(
    `${bad === 0 ? 'ok  ' : 'FAIL'} ${name}: ${ok} passed, ${bad} failed (${result.seconds.toFixed(1)} s)`,
  );
  if (bad > 0 || result.code !== 0) {
    if (bad === 0) failed++; // exited non-zero after passing: still a failure
    failures.push(name);
    const lines = result.output
      .split('\n')
      .filter((l) => !/Vulkan shaderUniform|While initializing adapter|at InitializeImpl/.test(l));
    console.log(lines.slice(-80).join('\n'));
  }
}

if (failures.length > 0) console.log(`\nfailed: ${failures.join(', ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
