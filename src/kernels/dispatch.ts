/** Splits a 1-D launch of `invocations` into a 2-D grid that respects maxComputeWorkgroupsPerDimension. */
export function grid1d(
  invocations: number,
  workgroupSize: number,
  maxPerDimension: number,
): { workgroups: [number, number]; rowStride: number } {
  const groups = Math.max(1, Math.ceil(invocations / workgroupSize));
  if (groups <= maxPerDimension) return { workgroups: [groups, 1], rowStride: groups * workgroupSize };
  const rows = Math.ceil(groups / maxPerDimension);
  const perRow = Math.ceil(groups / rows);
  return { workgroups: [perRow, rows], rowStride: perRow * workgroupSize };
}
