// The output formats of a profile by name, for `--format` and for
// libraries that take a format name from their users.

import { InvalidArgumentError } from '../errors';
import type { Profile } from '../profile/profile';
import type { StackFormatOptions } from './collapsed';
import type { FlamegraphOptions } from './flamegraph';
import type { SummaryOptions } from './summary';

/** The public members of `Profile`: structural, so that a profile typed
 * by the declarations in index.d.ts fits as well. */
type PublicProfile = Pick<Profile, keyof Profile>;

/** Options of `renderProfile()`. Each format reads the options it has. */
export interface RenderOptions
  extends SummaryOptions, StackFormatOptions, FlamegraphOptions {}

/** A format's description, file name extension and kind. */
export interface FormatInfo {
  /** One line for help text. */
  readonly description: string;
  /** The usual file name extension, with its dot. */
  readonly extension: string;
  /** True when the output is binary, so it is a Buffer, not a string. */
  readonly binary: boolean;
}

/** A format's facts and its renderer. */
interface FormatEntry extends FormatInfo {
  readonly render: (
    profile: PublicProfile,
    options: RenderOptions,
  ) => string | Buffer;
}

const FORMATS = {
  summary: {
    description: '% self and % total per function, as a table',
    extension: '.txt',
    binary: false,
    render: (profile, options) => profile.toSummary(options),
  },
  'summary-by-line': {
    description: '% self and % total per function and line, as a table',
    extension: '.txt',
    binary: false,
    render: (profile, options) => profile.toSummary({ ...options, by: 'line' }),
  },
  collapsed: {
    description:
      'folded stacks, one "frame;frame count" line each, for inferno, ' +
      'flamegraph.pl and speedscope',
    extension: '.folded',
    binary: false,
    render: (profile, options) => profile.toCollapsed(options),
  },
  flamegraph: {
    description: 'an interactive SVG flame graph, searchable, drawn by inferno',
    extension: '.svg',
    binary: false,
    render: (profile, options) => profile.toFlamegraphSvg(options),
  },
  speedscope: {
    description: 'JSON for speedscope, one profile per thread',
    extension: '.speedscope.json',
    binary: false,
    render: (profile, options) =>
      `${JSON.stringify(profile.toSpeedscope(options))}\n`,
  },
  pprof: {
    description:
      'gzipped profile.proto for go tool pprof, like a Go CPU profile',
    extension: '.pb.gz',
    binary: true,
    render: (profile, options) => profile.toPprof(options),
  },
  callgrind: {
    description: 'callgrind profile for KCachegrind and callgrind_annotate',
    extension: '.callgrind',
    binary: false,
    render: (profile, options) => profile.toCallgrind(options),
  },
} satisfies Record<string, FormatEntry>;

/** The name of an output format. */
export type ProfileFormat = keyof typeof FORMATS;

/** The names of the output formats, the default (`summary`) first. */
export const PROFILE_FORMATS: readonly ProfileFormat[] = Object.freeze(
  Object.keys(FORMATS) as ProfileFormat[],
);

/** Returns whether `name` is the name of an output format. */
export function isProfileFormat(name: string): name is ProfileFormat {
  return Object.hasOwn(FORMATS, name);
}

/** Returns the description, file extension and kind of a format. Throws
 * an `InvalidArgumentError` for an unknown name. */
export function formatInfo(format: ProfileFormat): FormatInfo {
  const { description, extension, binary } = entryOf(format);
  return { description, extension, binary };
}

/**
 * Writes a profile in the named format: a string for text formats, a
 * Buffer for binary ones (see `formatInfo(format).binary`). Throws an
 * `InvalidArgumentError` for an unknown name.
 */
export function renderProfile(
  profile: PublicProfile,
  format: ProfileFormat,
  options: RenderOptions = {},
): string | Buffer {
  return entryOf(format).render(profile, options);
}

function entryOf(format: ProfileFormat): FormatEntry {
  if (!isProfileFormat(format)) {
    throw new InvalidArgumentError(
      `unknown format "${String(format)}"; use one of: ${PROFILE_FORMATS.join(', ')}`,
    );
  }
  return FORMATS[format];
}
