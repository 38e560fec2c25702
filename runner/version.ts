import { readFileSync } from 'node:fs';

/** The package's version: package.json above this file (runner/ in the repository, dist/runner/ installed). */
export function packageVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const json = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (json.name === 'sharpness-lab' && json.version) return json.version;
    } catch {}
  }
  return 'unknown';
}
