/**
 * The `bench` command's page job: runs benchmark suites on the page's engine, with tfjs-webgpu as the
 * peer on the same adapter, and returns their results for Node to print exactly as the Node backend
 * does. Page-only (the tfjs peer is loaded from the bundle, not from Dawn).
 */
import { withEngine } from '../../runner/browser/page-runtime.ts';
import type { JobContext } from '../../runner/browser/protocol.ts';
import type { AdapterDescription } from '../../src/gpu/context.ts';
import type { BenchResult } from '../suite.ts';
import { PAGE_BENCH_SUITES } from './suites.ts';
import { disposePageTfjs, loadPageTfjs } from './tfjs.ts';

export interface BenchJobParams {
  suites: string[];
  minSeconds: number;
}

export interface BenchJobResult {
  adapter: AdapterDescription;
  suites: { name: string; results: BenchResult[] }[];
}

export async function benchJob(context: JobContext, params: BenchJobParams): Promise<BenchJobResult> {
  for (const name of params.suites) {
    if (!Object.hasOwn(PAGE_BENCH_SUITES, name))
      throw new Error(
        `suite '${name}' is not available in the browser (it has: ${Object.keys(PAGE_BENCH_SUITES).join(', ')})`,
      );
  }
  return withEngine(context, async (engine) => {
    const adapter = engine.context.adapterInfo;
    context.log(
      `bench: adapter ${adapter.description || adapter.device} (${adapter.vendor}/${adapter.architecture})`,
    );
    const suites: BenchJobResult['suites'] = [];
    try {
      for (const name of params.suites) {
        const suite = await PAGE_BENCH_SUITES[name as keyof typeof PAGE_BENCH_SUITES]();
        const results = await suite.run({
          engine,
          minSeconds: params.minSeconds,
          log: context.log,
          tfjs: () => loadPageTfjs(adapter),
        });
        suites.push({ name, results });
      }
    } finally {
      await disposePageTfjs();
    }
    return { adapter, suites };
  });
}
