/**
 * Chromium for the browser host: find the executable, choose the WebGPU flags (hardware adapter, or
 * SwiftShader on a machine without a GPU), launch it through puppeteer-core with a fresh temporary
 * profile, and always close it: the whole process group is killed and the profile deleted, also when
 * the run fails, the browser crashes or the process is interrupted.
 */
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { importOptional } from '../node/optional.ts';
import { cleanupOnExit, isProcessAlive, killProcessGroup } from './cleanup.ts';
import { BrowserRunError } from './errors.ts';

/** 'hardware': the platform's GPU backend; 'swiftshader': Chromium's CPU Vulkan (no GPU needed). */
export type GpuMode = 'hardware' | 'swiftshader';

export const EXECUTABLE_ENV_VARS = ['CHROME_PATH', 'PUPPETEER_EXECUTABLE_PATH'] as const;
export const PROFILE_PREFIX = 'sharpness-lab-chromium-';

const SYSTEM_CANDIDATES: Partial<Record<NodeJS.Platform, string[]>> = {
  linux: [
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome-stable',
    '/usr/bin/google-chrome',
    '/snap/bin/chromium',
  ],
  darwin: [
    '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
    '/Applications/Chromium.app/Contents/MacOS/Chromium',
  ],
  win32: [
    'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe',
    'C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe',
  ],
};

/** Where `npx @puppeteer/browsers install chrome` (or puppeteer's postinstall) puts its builds. */
const PUPPETEER_BINARIES: Partial<Record<NodeJS.Platform, string[]>> = {
  linux: ['chrome-linux64/chrome'],
  darwin: [
    'chrome-mac-arm64/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing',
    'chrome-mac-x64/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing',
  ],
  win32: ['chrome-win64/chrome.exe'],
};

export const CHROMIUM_INSTALL_HINT =
  'No Chromium or Chrome found. Install one (Debian/Ubuntu: `apt-get install chromium`; anywhere: ' +
  '`npx @puppeteer/browsers install chrome@stable`), or point CHROME_PATH at its executable.';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function versionKey(name: string): number[] {
  return (name.match(/\d+/g) ?? []).map(Number);
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Newest Chrome for Testing under Puppeteer's cache (PUPPETEER_CACHE_DIR or ~/.cache/puppeteer). */
export function findPuppeteerChrome(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const root = join(env.PUPPETEER_CACHE_DIR ?? join(homedir(), '.cache', 'puppeteer'), 'chrome');
  let builds: string[];
  try {
    builds = readdirSync(root);
  } catch {
    return undefined;
  }
  builds.sort((a, b) => compareVersions(versionKey(b), versionKey(a)));
  for (const build of builds) {
    for (const binary of PUPPETEER_BINARIES[platform] ?? []) {
      const path = join(root, build, binary);
      if (isExecutable(path)) return path;
    }
  }
  return undefined;
}

/**
 * The browser to launch: CHROME_PATH or PUPPETEER_EXECUTABLE_PATH when set (an error if it does not
 * point at an executable), else a system Chromium/Chrome, else one installed by Puppeteer.
 */
export function findChromium(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): { path: string; source: string } {
  for (const name of EXECUTABLE_ENV_VARS) {
    const path = env[name];
    if (!path) continue;
    if (!isExecutable(path))
      throw new BrowserRunError(
        'launch',
        `${name}=${path} is not an executable file (point it at Chrome or Chromium, or unset it)`,
      );
    return { path, source: name };
  }
  const system = (SYSTEM_CANDIDATES[platform] ?? []).find(isExecutable);
  if (system) return { path: system, source: 'system' };
  const cached = findPuppeteerChrome(env, platform);
  if (cached) return { path: cached, source: 'puppeteer cache' };
  throw new BrowserRunError('launch', CHROMIUM_INSTALL_HINT);
}

/**
 * Command-line flags. WebGPU on (`--enable-unsafe-webgpu`; `--enable-webgpu-developer-features` for
 * full-resolution timestamps instead of 100 µs); background networking, component updates, sync,
 * and QUIC off (a closed network otherwise sees a stream of refused connections). Crashpad, which
 * Debian's build starts, keeps its database in the profile (CHROME_CONFIG_HOME). SwiftShader: Chromium's own CPU Vulkan. Hardware on Linux:
 * Vulkan through ANGLE (this set can hang `requestAdapter` on a machine without a GPU, hence the
 * choice is made from what Dawn finds first).
 */
export function chromiumArgs(gpu: GpuMode, platform: NodeJS.Platform = process.platform): string[] {
  const args = [
    '--enable-unsafe-webgpu',
    '--enable-webgpu-developer-features',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--disable-default-apps',
    '--disable-domain-reliability',
    '--no-first-run',
    '--no-default-browser-check',
  ];
  if (platform === 'linux') args.push('--no-sandbox');
  if (gpu === 'swiftshader') args.push('--use-webgpu-adapter=swiftshader');
  else if (platform === 'linux')
    args.push('--enable-features=Vulkan', '--use-angle=vulkan', '--disable-vulkan-surface');
  return args;
}

export interface ChromiumOptions {
  gpu: GpuMode;
  /** Default: `findChromium()`. */
  executablePath?: string;
  /** Environment of the browser process (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Launch gives up after this long (default 30 s). */
  launchTimeoutMs?: number;
}

export interface Chromium {
  browser: Browser;
  /** The browser's process id (the leader of its process group). */
  pid: number;
  executablePath: string;
  /** e.g. 'Chrome/156.0.8078.108'. */
  version: string;
  /** Major version, for the host name 'chromium N (puppeteer)'. */
  majorVersion: number;
  profileDir: string;
  gpu: GpuMode;
  args: string[];
  /** Settles with a message if the browser goes away before `close()` (crash, killed). */
  readonly crashed: Promise<string>;
  /** Closes the browser, kills whatever is left of its process group, deletes the profile. Idempotent. */
  close(): Promise<void>;
}

function exited(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]);
}

/** A profile folder names the pid of the process that launched it: PREFIX<pid>-XXXXXX. */
const OWNED_PROFILE = new RegExp(`^${PROFILE_PREFIX}(\\d+)-`);

/**
 * Chromium's own temporary folder (TMPDIR/org.chromium.Chromium.*, its singleton socket), found
 * through the profile's SingletonSocket link. Chromium removes it only on a graceful exit.
 */
function chromiumTempDir(profileDir: string): string | undefined {
  try {
    const dir = dirname(readlinkSync(join(profileDir, 'SingletonSocket')));
    return basename(dir).startsWith('org.chromium.Chromium.') ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Deletes a profile and Chromium's temporary folder that belongs to it. */
function removeProfile(profileDir: string): void {
  const temporary = chromiumTempDir(profileDir);
  if (temporary) rmSync(temporary, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  rmSync(profileDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
}

/**
 * Removes the profiles (and browsers still using them) of runs whose process is gone — killed with
 * SIGKILL, which no handler sees. Returns the folders removed.
 */
export function sweepDeadProfiles(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const owner = Number(OWNED_PROFILE.exec(name)?.[1]);
    if (!Number.isInteger(owner) || owner === process.pid || isProcessAlive(owner)) continue;
    const path = join(dir, name);
    killByProfile(path);
    removeProfile(path);
    removed.push(path);
  }
  return removed;
}

/**
 * Launches Chromium with a fresh profile under the system temp folder, named with this process's pid
 * (so a later run can sweep it if this one is killed). Closing deletes the profile and Chromium's
 * temporary folder. (Chromium's TMPDIR is not moved inside the profile: its singleton socket path
 * would then outgrow the 108 bytes a Unix socket path may have, and Chromium fails to start.)
 */
export async function launchChromium(options: ChromiumOptions): Promise<Chromium> {
  // An optional peer dependency: without it, one line saying what to install (before anything is made).
  const { default: puppeteer } = await importOptional<typeof import('puppeteer-core')>('puppeteer-core');
  const executablePath = options.executablePath ?? findChromium().path;
  sweepDeadProfiles();
  const profileDir = mkdtempSync(join(tmpdir(), `${PROFILE_PREFIX}${process.pid}-`));
  let pid: number | undefined;
  const unregister = cleanupOnExit(() => {
    killProcessGroup(pid);
    killByProfile(profileDir); // also when interrupted during launch, before puppeteer gave us the pid
    removeProfile(profileDir);
  });
  const args = chromiumArgs(options.gpu);
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath,
      headless: true,
      pipe: true,
      userDataDir: profileDir,
      args,
      // Debian's build starts crashpad; keep its database inside the profile we delete.
      env: { ...(options.env ?? process.env), CHROME_CONFIG_HOME: join(profileDir, 'config') },
      timeout: options.launchTimeoutMs ?? 30_000,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      defaultViewport: null,
    });
  } catch (error) {
    killByProfile(profileDir); // a browser that started but never answered
    unregister();
    removeProfile(profileDir);
    throw new BrowserRunError(
      'launch',
      `could not start Chromium (${executablePath}): ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const child = browser.process();
  pid = child?.pid;
  let closing = false;
  let closed: Promise<void> | undefined;
  const crashed = new Promise<string>((resolve) => {
    browser.once('disconnected', async () => {
      if (closing) return;
      await within(exited(child), 1_000);
      const how = child?.signalCode
        ? `killed by ${child.signalCode}`
        : typeof child?.exitCode === 'number'
          ? `exit code ${child.exitCode}`
          : 'connection lost';
      resolve(`Chromium (pid ${pid}) exited unexpectedly (${how})`);
    });
  });
  let version: string;
  try {
    version = await browser.version();
  } catch (error) {
    killProcessGroup(pid);
    await within(exited(child), 5_000);
    unregister();
    removeProfile(profileDir);
    throw new BrowserRunError(
      'launch',
      `Chromium (${executablePath}) started but did not answer: ${(error as Error).message}`,
    );
  }
  return {
    browser,
    pid: pid ?? 0,
    executablePath,
    version,
    majorVersion: Number(/\/(\d+)/.exec(version)?.[1] ?? 0),
    profileDir,
    gpu: options.gpu,
    args,
    crashed,
    close() {
      closed ??= (async () => {
        closing = true;
        // A graceful close first (Chromium flushes the profile), then nothing of the group survives.
        await within(
          browser.close().catch(() => {}),
          5_000,
        );
        killProcessGroup(pid);
        await within(exited(child), 5_000);
        killByProfile(profileDir); // helpers outside the group (crashpad) that have not exited yet
        const temporary = chromiumTempDir(profileDir);
        if (temporary) await rm(temporary, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
        await rm(profileDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
        unregister();
      })();
      return closed;
    },
  };
}

interface ProcEntry {
  pid: number;
  pgid: number;
  /** Arguments joined by spaces (Chromium rewrites its process title; NULs become spaces here). */
  cmdline: string;
}

/** Live processes from /proc (Linux; empty elsewhere). */
function listProcesses(): ProcEntry[] {
  let names: string[];
  try {
    names = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found: ProcEntry[] = [];
  for (const name of names) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      found.push({ pid: Number(name), pgid: Number(fields[2]), cmdline });
    } catch {}
  }
  return found;
}

/** The GPU process of the browser whose process group is `groupPid` (Linux). */
export function findGpuProcess(groupPid: number): number | undefined {
  return listProcesses().find((p) => p.pgid === groupPid && / --type=gpu-process( |$)/.test(` ${p.cmdline}`))
    ?.pid;
}

/**
 * Kills every process started with `profileDir` on its command line, and their process groups
 * (Linux): the browser when the process is interrupted before puppeteer has told us its pid.
 */
export function killByProfile(profileDir: string): void {
  for (const p of listProcesses()) {
    if (p.pid !== process.pid && p.cmdline.includes(profileDir)) killProcessGroup(p.pid);
  }
}
