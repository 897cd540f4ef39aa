// Markdown tables for the benchmark reports: a header with its rule, and a row from its cells.

/** One table row: `| a | b |`. */
export function mdRow(cells: readonly (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** The header row and the rule under it, as two lines. */
export function mdHeader(columns: readonly string[]): string {
  return `${mdRow(columns)}\n|${'---|'.repeat(columns.length)}`;
}
