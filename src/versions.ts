import { loadNative } from './native';

/** A range of Ruby releases that share one set of struct layouts. */
export interface VersionRange {
  /** First release of the range, such as `3.1.0`. */
  readonly from: string;
  /** Last release of the range, inclusive. */
  readonly through: string;
  /** True once a live process of this range has been profiled. */
  readonly verified: boolean;
}

/** Returns the ranges of Ruby releases that rbprof can read, oldest first. */
export function supportedVersions(): VersionRange[] {
  const ranges = loadNative()
    .supportedVersions()
    .map(({ from, through, verified }) => ({ from, through, verified }));
  return ranges.sort((a, b) => compareVersions(a.from, b.from));
}

function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) {
      return difference;
    }
  }
  return 0;
}
