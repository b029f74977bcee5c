// The programs that read rbprof's formats, run on files written by the
// tests, and checks of the formats that have no program here.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { ExecutionContext } from 'ava';

/** Returns the first of `candidates` that starts, or undefined. Tools
 * differ in the exit code of their version option, so it is not read. */
function findTool(
  candidates: readonly string[],
  versionArgs: readonly string[],
): string | undefined {
  for (const candidate of candidates) {
    if (candidate.includes('/') && !existsSync(candidate)) {
      continue;
    }
    const result = spawnSync(candidate, versionArgs, { stdio: 'ignore' });
    if (result.error === undefined) {
      return candidate;
    }
  }
  return undefined;
}

/** The Go tool, for `go tool pprof`: RBPROF_TEST_GO, the official
 * release's default place, or `go` on PATH. */
export const GO = findTool(
  [process.env.RBPROF_TEST_GO ?? '', '/usr/local/go/bin/go', 'go'].filter(
    (candidate) => candidate !== '',
  ),
  ['version'],
);
export const CALLGRIND_ANNOTATE = findTool(
  ['callgrind_annotate'],
  ['--version'],
);
export const XMLLINT = findTool(['xmllint'], ['--version']);

/**
 * Returns `test` when the tool was found. Otherwise the test is skipped
 * with a note on the console, except in CI, where .ci/run installs every
 * tool and a missing one must fail.
 */
export function whenFound(
  tool: string | undefined,
  name: string,
  register: typeof import('ava').default,
): typeof import('ava').default {
  if (tool !== undefined || process.env.CI === 'true') {
    return register;
  }
  console.warn(`skipping the tests that need ${name}: it is not installed`);
  return register.skip as unknown as typeof import('ava').default;
}

export interface ToolResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a tool and fails the test when it exits with an error. */
export function runTool(
  t: ExecutionContext,
  tool: string | undefined,
  args: readonly string[],
): ToolResult {
  if (tool === undefined) {
    throw new Error(`the tool for ${args.join(' ')} is not installed`);
  }
  const result = spawnSync(tool, args, {
    encoding: 'utf8',
    timeout: 60_000,
    // Keeps the Go command from trying to download another toolchain.
    env: { ...process.env, GOTOOLCHAIN: 'local' },
  });
  if (result.error !== undefined) {
    throw result.error;
  }
  if (result.status !== 0) {
    t.fail(
      `${tool} ${args.join(' ')} exited with ${result.status}:\n${result.stderr}`,
    );
  }
  return { stdout: result.stdout, stderr: result.stderr };
}

/** Writes `contents` to a file in a directory that the test's teardown
 * removes, and returns the file's path. */
export function writeTemp(
  t: ExecutionContext,
  name: string,
  contents: string | Uint8Array,
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rbprof-formats-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, contents);
  return file;
}

/** One row of `go tool pprof -top`. */
export interface PprofTopRow {
  readonly flat: string;
  readonly cum: string;
  readonly name: string;
}

/** Parses the rows of `go tool pprof -top` below its column header. */
export function parsePprofTop(text: string): PprofTopRow[] {
  const rows: PprofTopRow[] = [];
  let inTable = false;
  for (const line of text.split('\n')) {
    if (/^\s+flat\s+flat%\s+sum%\s+cum\s+cum%/.test(line)) {
      inTable = true;
      continue;
    }
    const match = /^\s*(\S+)\s+\S+%\s+\S+%\s+(\S+)\s+\S+%\s+(.*)$/.exec(line);
    if (inTable && match !== null) {
      rows.push({ flat: match[1], cum: match[2], name: match[3] });
    }
  }
  return rows;
}

/** Parses `COUNT (PERCENT)  FILE:FUNCTION` rows of callgrind_annotate
 * into counts by `FILE:FUNCTION`, and its PROGRAM TOTALS. */
export function parseCallgrindAnnotate(text: string): {
  totals: number | undefined;
  rows: Map<string, number>;
} {
  let totals: number | undefined;
  const rows = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (match === null) {
      continue;
    }
    const count = Number(match[1].replace(/,/g, ''));
    if (match[2] === 'PROGRAM TOTALS') {
      totals = count;
    } else {
      rows.set(match[2], count);
    }
  }
  return { totals, rows };
}

/**
 * Reads folded stacks as speedscope's importer does: it takes a text file
 * as folded stacks when every newline follows ` DIGITS`, then each line
 * matching `^(.*) (\d+)$` is a stack split at `;`. Returns undefined when
 * speedscope would not take the text as folded stacks.
 */
export function importFoldedLikeSpeedscope(
  text: string,
): Array<{ frames: string[]; count: number }> | undefined {
  const lineCount = text.split(/\n/).length;
  if (lineCount !== text.split(/ \d+\r?\n/).length) {
    return undefined;
  }
  const stacks = [];
  for (const line of text.split('\n')) {
    const match = /^(.*) (\d+)$/.exec(line);
    if (match !== null) {
      stacks.push({ frames: match[1].split(';'), count: Number(match[2]) });
    }
  }
  return stacks;
}

const SPEEDSCOPE_UNITS = [
  'none',
  'nanoseconds',
  'microseconds',
  'milliseconds',
  'seconds',
  'bytes',
];

/**
 * Checks a value against speedscope's file format schema
 * (https://www.speedscope.app/file-format-schema.json, generated from
 * `src/lib/file-format-spec.ts`) for the parts rbprof writes: required
 * fields, their types, the unit enumeration, and that samples refer to
 * existing frames. Returns the problems found, none when valid.
 */
export function speedscopeProblems(file: unknown): string[] {
  const problems: string[] = [];
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const isNumber = (value: unknown) =>
    typeof value === 'number' && Number.isFinite(value);

  if (!isObject(file)) {
    return ['the file is not a JSON object'];
  }
  if (file.$schema !== 'https://www.speedscope.app/file-format-schema.json') {
    problems.push(`$schema is ${JSON.stringify(file.$schema)}`);
  }
  for (const key of ['name', 'exporter'] as const) {
    if (key in file && typeof file[key] !== 'string') {
      problems.push(`${key} is not a string`);
    }
  }
  const shared = file.shared;
  const frames =
    isObject(shared) && Array.isArray(shared.frames) ? shared.frames : [];
  if (!isObject(shared) || !Array.isArray(shared.frames)) {
    problems.push('shared.frames is missing or not an array');
  }
  frames.forEach((frame: unknown, i: number) => {
    if (!isObject(frame) || typeof frame.name !== 'string') {
      problems.push(`frame ${i} has no string name`);
      return;
    }
    if ('file' in frame && typeof frame.file !== 'string') {
      problems.push(`frame ${i} has a file that is not a string`);
    }
    for (const key of ['line', 'col'] as const) {
      if (key in frame && !isNumber(frame[key])) {
        problems.push(`frame ${i} has a ${key} that is not a number`);
      }
    }
  });
  if (!Array.isArray(file.profiles)) {
    problems.push('profiles is missing or not an array');
    return problems;
  }
  if (
    'activeProfileIndex' in file &&
    !(
      Number.isInteger(file.activeProfileIndex) &&
      (file.activeProfileIndex as number) >= 0 &&
      (file.activeProfileIndex as number) < file.profiles.length
    )
  ) {
    problems.push('activeProfileIndex is not an index into profiles');
  }
  file.profiles.forEach((profile: unknown, i: number) => {
    if (!isObject(profile)) {
      problems.push(`profile ${i} is not an object`);
      return;
    }
    if (profile.type !== 'sampled') {
      problems.push(`profile ${i} has type ${JSON.stringify(profile.type)}`);
    }
    if (typeof profile.name !== 'string') {
      problems.push(`profile ${i} has no string name`);
    }
    if (!SPEEDSCOPE_UNITS.includes(profile.unit as string)) {
      problems.push(`profile ${i} has unit ${JSON.stringify(profile.unit)}`);
    }
    if (!isNumber(profile.startValue) || !isNumber(profile.endValue)) {
      problems.push(`profile ${i} lacks a numeric startValue or endValue`);
    }
    if (!Array.isArray(profile.samples) || !Array.isArray(profile.weights)) {
      problems.push(`profile ${i} lacks samples or weights`);
      return;
    }
    if (profile.samples.length !== profile.weights.length) {
      problems.push(`profile ${i} has not one weight per sample`);
    }
    profile.weights.forEach((weight: unknown, j: number) => {
      if (!isNumber(weight)) {
        problems.push(`profile ${i} weight ${j} is not a number`);
      }
    });
    profile.samples.forEach((stack: unknown, j: number) => {
      const valid =
        Array.isArray(stack) &&
        stack.every(
          (index) =>
            Number.isInteger(index) && index >= 0 && index < frames.length,
        );
      if (!valid) {
        problems.push(`profile ${i} sample ${j} is not a list of frames`);
      }
    });
  });
  return problems;
}
