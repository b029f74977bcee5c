import type { SummaryRow } from '../profile/rows';
import { frameLabel } from './label';

export interface SummaryOptions {
  /** Rows to print, the highest `% self` first; all when absent. */
  readonly top?: number;
  /** Characters per line; longer lines are cut. No limit when absent. */
  readonly width?: number;
}

export const SUMMARY_HEADER = '% self  % total  name';

/**
 * Formats rows as the table that rbspy and other Ruby profilers print:
 *
 * ```
 * % self  % total  name
 *  29.44    29.44  HelloworldController#fibonacci - /app/app/controllers/helloworld_controller.rb
 * ```
 *
 * Rows by line end in `:LINE` after the path. Every line, the last
 * included, ends with a newline.
 */
export function formatSummary(
  rows: readonly SummaryRow[],
  options: SummaryOptions = {},
): string {
  const shown = options.top === undefined ? rows : rows.slice(0, options.top);
  const lines = [SUMMARY_HEADER];
  for (const row of shown) {
    const self = row.selfPercent.toFixed(2).padStart(6);
    const total = row.totalPercent.toFixed(2).padStart(7);
    const label = frameLabel(row.function.name, row.function.path, row.line);
    lines.push(`${self}  ${total}  ${label}`);
  }
  const width = options.width;
  const cut =
    width === undefined ? lines : lines.map((line) => cutLine(line, width));
  return cut.map((line) => `${line}\n`).join('');
}

function cutLine(line: string, width: number): string {
  if (line.length <= width) {
    return line;
  }
  // Cut by code point so that a character outside the BMP is not split.
  return Array.from(line).slice(0, Math.max(0, width)).join('');
}
