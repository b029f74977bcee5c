/**
 * Returns a frame's label as the summary tables print it: `name - path`,
 * with `:line` when a line is given. Synthetic frames such as
 * `(garbage collection)` have no path and print their name alone.
 */
export function frameLabel(name: string, path: string, line?: number): string {
  if (path === '') {
    return name;
  }
  return line === undefined ? `${name} - ${path}` : `${name} - ${path}:${line}`;
}
