#!/usr/bin/env node
// Entry point of `npx sharpness-lab`. In the repository (runner/cli.ts beside this file) it runs the
// TypeScript sources through tsx, a devDependency, so edits need no build; the installed package has
// no sources and runs the compiled JavaScript in dist/ (plain Node, no tsx).
import { existsSync } from 'node:fs';

const sources = new URL('./cli.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/runner/cli.js', import.meta.url).href);
}
