// Shared-prefix arithmetic for KV-cache reuse: how many leading tokens two sequences have in common.

/** Length of the longest common prefix of a and b. */
export function commonPrefixLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
