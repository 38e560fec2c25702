/**
 * Page stack traces point into the bundle (http://127.0.0.1:PORT/chunks/x.js:LINE:COL); this maps
 * them back to the TypeScript sources through the bundle's source maps, relative to the repository
 * (src/gpu/shader/registry.ts:45:11), so errors from the page read like errors from Node.
 */
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

export function createStackMapper(
  bundleDir: string,
  serverUrl: string,
  repoRoot: string,
): (text: string) => string {
  const maps = new Map<string, SourceMap | null>();
  const mapOf = (file: string): SourceMap | null => {
    if (!maps.has(file)) {
      try {
        const payload = JSON.parse(readFileSync(join(bundleDir, `${file}.map`), 'utf8')) as SourceMapPayload;
        maps.set(file, new SourceMap(payload));
      } catch {
        maps.set(file, null);
      }
    }
    return maps.get(file) ?? null;
  };
  const escaped = serverUrl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const pattern = new RegExp(`${escaped}([\\w./-]+\\.js):(\\d+):(\\d+)`, 'g');
  return (text) =>
    text.replace(pattern, (whole, file: string, line: string, column: string) => {
      const map = mapOf(file);
      const entry = map?.findEntry(Number(line) - 1, Number(column) - 1) as
        | { originalSource?: string; originalLine?: number; originalColumn?: number }
        | undefined;
      if (!entry?.originalSource || entry.originalLine === undefined) return whole;
      const source = relative(repoRoot, resolve(dirname(join(bundleDir, file)), entry.originalSource));
      return `${source}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
    });
}
