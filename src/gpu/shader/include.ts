/**
 * WGSL has no includes; kernels that share code (the Philox generator) say `//!include FILE.wgsl` on
 * a line of its own. The shader library convention: a file that others include starts with a
 * `//!fragment` line and is only ever compiled inside its includers (it may use names they declare,
 * such as a type alias: WGSL has no generics); every other file is a kernel, compiled on its own.
 * Expansion keeps a map from each expanded line back to its file and line so compiler messages
 * point at the source the author wrote.
 */
import { KernelError } from '../../errors.ts';

export interface ExpandedSource {
  code: string;
  /** origin[i] = where line i + 1 of `code` came from. */
  origin: { file: string; line: number }[];
}

const INCLUDE = /^\s*\/\/!include\s+(\S+)\s*$/;
const FRAGMENT = /^\/\/!fragment\b/;

/** Whether a shader source is a fragment: compiled only where it is included. */
export function isFragment(source: string): boolean {
  return FRAGMENT.test(source);
}

/** The files a source includes directly, in order. */
export function includedFiles(source: string): string[] {
  return source.split('\n').flatMap((line) => {
    const match = INCLUDE.exec(line);
    return match ? [match[1]] : [];
  });
}

export function expandIncludes(
  file: string,
  sources: Readonly<Record<string, string>>,
  stack: string[] = [],
): ExpandedSource {
  const source = sources[file];
  if (source === undefined) {
    throw new KernelError(stack[stack.length - 1] ?? file, `//!include ${file}: no such shader`);
  }
  if (stack.includes(file)) throw new KernelError(file, `//!include cycle: ${[...stack, file].join(' → ')}`);
  const lines: string[] = [];
  const origin: ExpandedSource['origin'] = [];
  source.split('\n').forEach((text, index) => {
    const match = INCLUDE.exec(text);
    if (!match) {
      lines.push(text);
      origin.push({ file, line: index + 1 });
      return;
    }
    const included = expandIncludes(match[1], sources, [...stack, file]);
    lines.push(...included.code.split('\n'));
    origin.push(...included.origin);
  });
  return { code: lines.join('\n'), origin };
}
