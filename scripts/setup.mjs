#!/usr/bin/env node
// Prepares a fresh clone for `npm start` / `npm test` (run by prestart and pretest). No dependencies:
// it must work before node_modules exists. Idempotent and quick when everything is in place.
//  1. npm packages: `npm ci` when node_modules is missing or older than package-lock.json.
//  2. The compiled package in dist/ (`npm run build`), rebuilt only when its inputs changed: what the
//     installed CLI and `import 'sharpness-lab'` run, and what the tarball test packs.
//  3. A WebGPU adapter: when none can be found and apt-get is usable (Debian/Ubuntu as root),
//     install Debian's chromium (it ships SwiftShader, a CPU Vulkan driver, and serves the browser
//     runner) and libvulkan1. Elsewhere, say exactly what to install.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => process.stderr.write(`setup: ${line}\n`);

function lockHash() {
  const lock = join(root, 'package-lock.json');
  return createHash('sha256').update(readFileSync(lock)).digest('hex');
}

function ensurePackages() {
  const stamp = join(root, 'node_modules', '.sharpness-lab-lock-hash');
  const hash = lockHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return;
  say('installing npm packages (npm ci)…');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) {
    say('npm ci failed; see the output above.');
    process.exit(1);
  }
  writeFileSync(stamp, hash);
}

function ensureBuild() {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'scripts', 'build.ts'), '--if-stale'],
    {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  if (result.status !== 0) {
    say('building dist/ failed; see the output above.');
    process.exit(1);
  }
}

/** Asks dawn.node for an adapter in a child process (same search as runner/node/device.ts). */
function adapterFound() {
  const probe = `
    import { acquireAdapter } from './runner/node/device.ts';
    try { const { adapter } = await acquireAdapter({ log: () => {} }); console.log(adapter.info.architecture || adapter.info.vendor || 'ok'); }
    catch (error) { console.log('none'); }
    process.exit(0);`;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const answer = (result.stdout ?? '').trim().split('\n').pop();
  return answer && answer !== 'none' ? answer : undefined;
}

function hasLibVulkan() {
  if (process.platform !== 'linux') return true;
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    return ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'].some((d) => {
      try {
        return readdirSync(d).some((f) => f.startsWith('libvulkan.so.1'));
      } catch {
        return false;
      }
    });
  }
}

function ensureAdapter() {
  if (hasLibVulkan() && adapterFound()) return;
  const apt =
    process.platform === 'linux' && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
  if (apt && root_) {
    say(
      'no WebGPU adapter found; installing Debian chromium (SwiftShader CPU Vulkan) and libvulkan1 with apt-get…',
    );
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const install = spawnSync(
      'apt-get',
      ['install', '-y', '-qq', '--no-install-recommends', 'chromium', 'libvulkan1'],
      { stdio: 'inherit', env },
    );
    if (update.status !== 0 || install.status !== 0) {
      say('apt-get failed; install chromium and libvulkan1 by hand.');
      process.exit(1);
    }
    const found = adapterFound();
    if (!found) {
      say('chromium is installed but Dawn still finds no adapter; run `npx sharpness-lab info` for details.');
      process.exit(1);
    }
    say(`WebGPU adapter ready (${found}).`);
    return;
  }
  say(
    'no WebGPU adapter found. Install a Vulkan/Metal/D3D12 GPU driver, or the CPU fallback: on Debian/Ubuntu ' +
      '`sudo apt-get install chromium libvulkan1` (SwiftShader), elsewhere a Chromium build that ships ' +
      'vk_swiftshader_icd.json and set SHARPNESS_LAB_SWIFTSHADER_ICD to its path.',
  );
  process.exit(1);
}

ensurePackages();
ensureBuild();
ensureAdapter();
