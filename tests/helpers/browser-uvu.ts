/**
 * A uvu-compatible `suite` for the page: the kernel test files register their tests with it
 * unchanged (the page bundle maps `uvu` here), and Node runs them one by one through the page jobs
 * in browser-kernel-page.ts, mirroring each suite as a real uvu suite (tests/browser-kernels.test.ts).
 * Semantics follow uvu 0.5: `before` hooks once before a suite's first test, `before.each` and
 * `after.each` around every test (`after.each` also after a failure), `after` once at the end;
 * `only` restricts a suite to those tests, `skip` counts.
 */
type Hook = (state: Record<string, unknown>) => unknown;
type Handler = (state: Record<string, unknown>) => unknown;

export interface CollectedSuite {
  file: string;
  name: string;
  tests: { name: string; handler: Handler }[];
  only: { name: string; handler: Handler }[];
  before: Hook[];
  after: Hook[];
  beforeEach: Hook[];
  afterEach: Hook[];
  skips: number;
  state: Record<string, unknown>;
}

export const collected: CollectedSuite[] = [];
let currentFile = '';

/** Names the file whose suites are registered next. */
export function beginFile(file: string): void {
  currentFile = file;
}

export interface Test {
  (name: string, handler: Handler): void;
  before: ((hook: Hook) => void) & { each: (hook: Hook) => void };
  after: ((hook: Hook) => void) & { each: (hook: Hook) => void };
  only(name: string, handler: Handler): void;
  skip(name?: string, handler?: Handler): void;
  run(): void;
}

export function suite(name = '', state: Record<string, unknown> = {}): Test {
  const s: CollectedSuite = {
    file: currentFile,
    name,
    tests: [],
    only: [],
    before: [],
    after: [],
    beforeEach: [],
    afterEach: [],
    skips: 0,
    state: { ...state, __suite__: name, __test__: '' },
  };
  collected.push(s);
  const test = ((testName: string, handler: Handler) => {
    s.tests.push({ name: testName, handler });
  }) as Test;
  test.before = Object.assign((hook: Hook) => void s.before.push(hook), {
    each: (hook: Hook) => void s.beforeEach.push(hook),
  });
  test.after = Object.assign((hook: Hook) => void s.after.push(hook), {
    each: (hook: Hook) => void s.afterEach.push(hook),
  });
  test.only = (testName, handler) => void s.only.push({ name: testName, handler });
  test.skip = () => void s.skips++;
  test.run = () => {};
  return test;
}

export const test = suite();

/** The tests a suite runs (its `only` tests when it has any). */
export function selected(s: CollectedSuite): { name: string; handler: Handler }[] {
  return s.only.length > 0 ? s.only : s.tests;
}
