// The callgrind profile format, which KCachegrind, QCachegrind and
// callgrind_annotate read. Specification:
// https://valgrind.org/docs/manual/cl-format.html

import type { Profile } from '../profile/profile';
import type { FunctionInfo } from '../types';
import {
  compareText,
  countedStacks,
  type StackFormatOptions,
} from './collapsed';

/** Options of `Profile.toCallgrind()`. */
export type CallgrindOptions = Pick<StackFormatOptions, 'states' | 'threads'>;

/** Costs of one function: self samples per line and calls it makes. */
interface FunctionCosts {
  readonly function: FunctionInfo;
  readonly selfByLine: Map<number, number>;
  /** Calls by `callee id:line of the call`. */
  readonly calls: Map<string, CallCost>;
}

interface CallCost {
  readonly callee: FunctionInfo;
  /** The caller's line that makes the call. */
  readonly line: number;
  /** Samples with this call on the stack. */
  samples: number;
}

/**
 * Formats a profile in the callgrind format with one event, `Samples`
 * (thread-samples), and positions by line. Threads are merged.
 *
 * Each function (`fl=` file, `fn=` name) lists its self samples per line
 * and, per call site, the samples spent in the callee (`cfl=`, `cfn=`,
 * `calls=`, then `LINE COST`). `calls=` gives the number of samples with
 * that call on the stack, because a sampler does not see calls. Only the
 * outermost frame of a function on a stack counts as called, so a
 * recursive call adds nothing and the inclusive cost of every function is
 * the number of samples that contain it. Output is sorted by file, name
 * and line, so equal profiles give equal files.
 */
export function formatCallgrind(
  profile: Profile,
  options: CallgrindOptions = {},
): string {
  const costs = new Map<number, FunctionCosts>();
  const costsOf = (fn: FunctionInfo) => {
    let entry = costs.get(fn.id);
    if (entry === undefined) {
      entry = { function: fn, selfByLine: new Map(), calls: new Map() };
      costs.set(fn.id, entry);
    }
    return entry;
  };

  let total = 0;
  for (const stack of countedStacks(profile.stacks(), options)) {
    const { frames, count } = stack;
    if (frames.length === 0) {
      continue;
    }
    total += count;
    const leaf = frames[frames.length - 1];
    const self = costsOf(leaf.function).selfByLine;
    self.set(leaf.line, (self.get(leaf.line) ?? 0) + count);

    const seen = new Set<number>();
    for (let i = 0; i < frames.length; i++) {
      const callee = frames[i].function;
      costsOf(callee);
      if (seen.has(callee.id)) {
        continue;
      }
      seen.add(callee.id);
      if (i === 0) {
        continue;
      }
      const caller = frames[i - 1];
      const calls = costsOf(caller.function).calls;
      const key = `${callee.id}:${caller.line}`;
      const call = calls.get(key);
      if (call === undefined) {
        calls.set(key, { callee, line: caller.line, samples: count });
      } else {
        call.samples += count;
      }
    }
  }

  const { pid, rubyVersion } = profile.target;
  const rate = profile.rateHz === undefined ? '' : ` at ${profile.rateHz} Hz`;
  const states = (options.states ?? ['running']).join(', ');
  const lines = [
    '# callgrind format',
    'version: 1',
    'creator: rbprof',
    `pid: ${pid}`,
    `desc: Ruby ${rubyVersion}, sampled${rate}, thread states: ${states}`,
    'positions: line',
    'event: Samples : Thread-samples',
    'events: Samples',
  ];

  const files = new NameTable();
  const names = new NameTable();
  const sorted = [...costs.values()].sort((a, b) =>
    compareFunctions(a.function, b.function),
  );
  for (const { function: fn, selfByLine, calls } of sorted) {
    lines.push(
      '',
      `fl=${files.ref(fileName(fn.path))}`,
      `fn=${names.ref(fn.name)}`,
    );
    const selfLines = [...selfByLine].sort(([a], [b]) => a - b);
    for (const [line, samples] of selfLines) {
      lines.push(`${line} ${samples}`);
    }
    const sortedCalls = [...calls.values()].sort(
      (a, b) => compareFunctions(a.callee, b.callee) || a.line - b.line,
    );
    for (const call of sortedCalls) {
      lines.push(
        `cfl=${files.ref(fileName(call.callee.path))}`,
        `cfn=${names.ref(call.callee.name)}`,
        `calls=${call.samples} 0`,
        `${call.line} ${call.samples}`,
      );
    }
  }
  lines.push('', `totals: ${total}`);
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * Compresses repeated names as the format allows: `(ID) NAME` the first
 * time, `(ID)` after that. Line breaks in names become spaces, because
 * each entry is one line.
 */
class NameTable {
  readonly #ids = new Map<string, number>();

  ref(name: string): string {
    const id = this.#ids.get(name);
    if (id !== undefined) {
      return `(${id})`;
    }
    const next = this.#ids.size + 1;
    this.#ids.set(name, next);
    return `(${next}) ${name.replace(/[\r\n]+/g, ' ')}`;
  }
}

function compareFunctions(a: FunctionInfo, b: FunctionInfo): number {
  return compareText(a.path, b.path) || compareText(a.name, b.name);
}

/**
 * Returns the file name for `fl=` lines. Synthetic frames such as
 * `(garbage collection)` have no path, and callgrind_annotate warns on an
 * empty file name, so they get `???`, valgrind's name for an unknown file.
 */
function fileName(path: string): string {
  return path === '' ? '???' : path;
}
