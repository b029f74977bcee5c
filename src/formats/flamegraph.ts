import { fromNativeError } from '../errors';
import { loadNative } from '../native';
import type { Profile } from '../profile/profile';
import { collapsedLines, type StackFormatOptions } from './collapsed';

/** Options of `Profile.toFlamegraphSvg()`. */
export interface FlamegraphOptions extends StackFormatOptions {
  /** The heading of the graph; `Process PID (Ruby VERSION)` when absent. */
  readonly title?: string;
}

/**
 * Draws the profile's folded stacks (`collapsedLines()`) as an interactive
 * SVG flame graph with inferno, in the addon: click a frame to zoom, and
 * use Search (or Ctrl+F) to highlight frames by name.
 */
export function renderFlamegraphSvg(
  profile: Profile,
  options: FlamegraphOptions = {},
): string {
  const lines = collapsedLines(profile.stacks(), options);
  const { pid, rubyVersion } = profile.target;
  const title = options.title ?? `Process ${pid} (Ruby ${rubyVersion})`;
  try {
    return loadNative().renderFlamegraph(lines, title);
  } catch (error) {
    throw fromNativeError(error);
  }
}
