/** Table formatting shared by the suites (host-agnostic: the matmul suite also runs in the page). */

/** A markdown table (first column left-aligned, the rest right-aligned). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}
