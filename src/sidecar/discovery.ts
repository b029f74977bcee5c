// Finds the Ruby processes to profile in the PID namespace that the
// sidecar shares with the application, and follows them as they come and
// go.

import { RbprofError, snapshot } from '../index';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import {
  listProcesses,
  looksLikeRuby,
  readProcess,
  type ProcessEntry,
} from './proc';

/** The processes to profile. */
export type TargetSelector =
  /** The roots of the Ruby process trees: Ruby processes without a Ruby
   * ancestor. */
  | { readonly kind: 'auto' }
  /** This process only. */
  | { readonly kind: 'pid'; readonly pid: number }
  /** The roots among the processes whose command line matches. */
  | { readonly kind: 'match'; readonly pattern: RegExp };

/** A Ruby process that the sidecar profiles. */
export interface Target {
  /** `PID@STARTTIME`, unique even when a pid is reused. */
  readonly key: string;
  readonly pid: number;
  /** The command line, cut at 4 KiB. */
  readonly command: string;
  readonly rubyVersion: string;
}

export interface DiscoveryOptions {
  readonly selector: TargetSelector;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The proc file system of the shared PID namespace, `/proc` by
   * default. */
  readonly procRoot?: string;
  /** Milliseconds between two scans, 2 s by default. */
  readonly intervalMs?: number;
  /** A process never selected, such as the sidecar itself. */
  readonly selfPid?: number;
}

/** A process that could not be profiled, and when to try it again. */
interface Failure {
  readonly count: number;
  readonly retryAt: number;
  readonly message: string;
}

const DEFAULT_INTERVAL_MS = 2000;
/** The maximum wait before a process that failed is tried again. */
const MAX_RETRY_MS = 60_000;
/** How long a lost target counts as replaced by the next one found, as
 * when the application restarts. */
const CHANGE_WINDOW_MS = 60_000;
/** Parent links followed at most, against a loop in a torn read. */
const MAX_DEPTH = 256;

/**
 * Scans /proc every `intervalMs`, and at once on `rescan()`. A process
 * selected for the first time is confirmed with one `snapshot()`, which
 * reads its threads through `/proc/PID/root` as sampling does. A process
 * that fails is tried again after 1 s, then after twice the previous
 * wait, up to 60 s.
 */
export class Discovery {
  readonly #options: DiscoveryOptions;
  readonly #procRoot: string;
  #targets = new Map<string, Target>();
  /** Results of `looksLikeRuby` by `PID@STARTTIME EXE`: the executable
   * changes when a process runs exec. */
  #rubyLike = new Map<string, boolean>();
  #failures = new Map<string, Failure>();
  #recentlyLost: Array<{ target: Target; at: number }> = [];
  readonly #listeners = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #scan: Promise<void> | undefined;
  #scanAgain = false;
  #stopped = false;
  #problem = 'the first scan of /proc has not finished';

  constructor(options: DiscoveryOptions) {
    this.#options = options;
    this.#procRoot = options.procRoot ?? '/proc';
  }

  /** The targets of the last scan, oldest first. */
  get targets(): Target[] {
    return [...this.#targets.values()];
  }

  /** The reason there is no target, for error responses. It is
   * meaningful only while `targets` is empty. */
  get problem(): string {
    return this.#problem;
  }

  /** Calls `listener` after each scan that changed the targets. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs the first scan, then scans every `intervalMs`. */
  async start(): Promise<void> {
    await this.rescan();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Scans now, or right after the scan in progress, and resolves once
   * the scan is done. */
  rescan(): Promise<void> {
    if (this.#scan !== undefined) {
      this.#scanAgain = true;
      return this.#scan;
    }
    clearTimeout(this.#timer);
    this.#scan = this.#runScans().finally(() => {
      this.#scan = undefined;
      if (!this.#stopped) {
        this.#timer = setTimeout(
          () => void this.rescan(),
          this.#options.intervalMs ?? DEFAULT_INTERVAL_MS,
        );
      }
    });
    return this.#scan;
  }

  /** Drops a target that could not be sampled, so that the next scans
   * try it again after a wait, as for a failed confirmation. */
  reportFailure(target: Target, error: unknown): void {
    if (this.#targets.delete(target.key)) {
      this.#fail(target.key, error);
      this.#publish();
    }
  }

  /** Returns the target whose process tree contains `pid`: the target
   * itself or one of its descendants. */
  async targetOf(pid: number): Promise<Target | undefined> {
    const byPid = new Map(this.targets.map((target) => [target.pid, target]));
    let current: number = pid;
    for (let depth = 0; depth < MAX_DEPTH && current > 0; depth++) {
      const target = byPid.get(current);
      if (target !== undefined) {
        return target;
      }
      const entry = await readProcess(this.#procRoot, current);
      if (entry === undefined) {
        return undefined;
      }
      current = entry.ppid;
    }
    return undefined;
  }

  async #runScans(): Promise<void> {
    do {
      this.#scanAgain = false;
      try {
        await this.#scanOnce();
      } catch (error) {
        this.#problem = `reading ${this.#procRoot} failed: ${(error as Error).message}`;
        this.#options.log.error('scan of /proc failed', {
          procRoot: this.#procRoot,
          error,
        });
      }
    } while (this.#scanAgain && !this.#stopped);
  }

  async #scanOnce(): Promise<void> {
    const entries = await listProcesses(this.#procRoot);
    const now = Date.now();
    const selected = await this.#select(entries);
    const eligible = selected.filter(
      (entry) => (this.#failures.get(keyOf(entry))?.retryAt ?? 0) <= now,
    );
    const roots = rootsOf(eligible, entries);

    const next = new Map<string, Target>();
    for (const entry of roots) {
      const key = keyOf(entry);
      const known = this.#targets.get(key) ?? (await this.#confirm(entry));
      if (known !== undefined) {
        next.set(key, known);
      }
    }
    if (this.#stopped) {
      return;
    }

    const present = new Set(entries.map(keyOf));
    for (const key of this.#failures.keys()) {
      if (!present.has(key)) {
        this.#failures.delete(key);
      }
    }
    for (const key of this.#rubyLike.keys()) {
      if (!present.has(key.slice(0, key.indexOf(' ')))) {
        this.#rubyLike.delete(key);
      }
    }

    const changed = this.#logChanges(this.#targets, next, now);
    this.#targets = next;
    this.#problem = this.#describeProblem(selected);
    if (changed) {
      this.#publish();
    }
  }

  /** Returns the processes that the selector picks, Ruby or not. */
  async #select(entries: ProcessEntry[]): Promise<ProcessEntry[]> {
    const { selector, selfPid } = this.#options;
    const others = entries.filter((entry) => entry.pid !== selfPid);
    switch (selector.kind) {
      case 'pid':
        return others.filter((entry) => entry.pid === selector.pid);
      case 'match':
        return others.filter((entry) => selector.pattern.test(entry.cmdline));
      case 'auto': {
        const ruby: ProcessEntry[] = [];
        for (const entry of others) {
          const key = `${keyOf(entry)} ${entry.exe ?? ''}`;
          let like = this.#rubyLike.get(key);
          if (like === undefined) {
            like = await looksLikeRuby(this.#procRoot, entry);
            this.#rubyLike.set(key, like);
          }
          if (like) {
            ruby.push(entry);
          }
        }
        return ruby;
      }
    }
  }

  /** Reads the process once to confirm that rbprof can profile it. */
  async #confirm(entry: ProcessEntry): Promise<Target | undefined> {
    try {
      const result = await snapshot({ pid: entry.pid });
      return {
        key: keyOf(entry),
        pid: entry.pid,
        command: entry.cmdline,
        rubyVersion: result.rubyVersion,
      };
    } catch (error) {
      const gone = error instanceof RbprofError && isGone(error.code);
      if (!gone) {
        this.#fail(keyOf(entry), error);
        const code = error instanceof RbprofError ? error.code : 'unknown';
        this.#options.log.warn(
          'cannot profile process',
          { pid: entry.pid, command: entry.cmdline, error },
          `cannot profile process ${code}`,
        );
      }
      return undefined;
    }
  }

  #fail(key: string, error: unknown): void {
    const count = (this.#failures.get(key)?.count ?? 0) + 1;
    const waitMs = Math.min(MAX_RETRY_MS, 1000 * 2 ** (count - 1));
    const message = error instanceof Error ? error.message : String(error);
    const hint = error instanceof RbprofError ? error.hint : undefined;
    this.#failures.set(key, {
      count,
      retryAt: Date.now() + waitMs,
      message: hint === undefined ? message : `${message}. ${hint}`,
    });
  }

  /** Logs the targets found and lost, and returns whether there were
   * any. */
  #logChanges(
    before: Map<string, Target>,
    after: Map<string, Target>,
    now: number,
  ): boolean {
    const { log } = this.#options;
    let changed = false;
    this.#recentlyLost = this.#recentlyLost.filter(
      (lost) => now - lost.at < CHANGE_WINDOW_MS,
    );
    for (const [key, target] of before) {
      if (!after.has(key)) {
        changed = true;
        log.info(
          'target lost',
          { pid: target.pid, command: target.command },
          `target lost ${target.pid}`,
        );
        this.#recentlyLost.push({ target, at: now });
      }
    }
    for (const [key, target] of after) {
      if (before.has(key)) {
        continue;
      }
      changed = true;
      const fields = {
        pid: target.pid,
        command: target.command,
        rubyVersion: target.rubyVersion,
      };
      const previous = this.#recentlyLost.shift()?.target;
      if (previous === undefined) {
        log.info('target found', fields, `target found ${target.pid}`);
      } else {
        log.info(
          'target changed',
          {
            ...fields,
            previousPid: previous.pid,
            previousCommand: previous.command,
          },
          `target changed ${target.pid}`,
        );
      }
    }
    this.#options.metrics.targets.set({}, after.size);
    return changed;
  }

  #describeProblem(selected: ProcessEntry[]): string {
    for (const entry of selected) {
      const failure = this.#failures.get(keyOf(entry));
      if (failure !== undefined) {
        return `process ${entry.pid} (${entry.cmdline}) cannot be profiled: ${failure.message}`;
      }
    }
    const { selector } = this.#options;
    switch (selector.kind) {
      case 'pid':
        return `no process ${selector.pid} in ${this.#procRoot}`;
      case 'match':
        return `no process in ${this.#procRoot} has a command line that matches ${selector.pattern}`;
      case 'auto':
        return (
          `no Ruby process in ${this.#procRoot}. In Kubernetes, set ` +
          'shareProcessNamespace: true in the pod spec so that the sidecar ' +
          'sees the processes of the other containers'
        );
    }
  }

  #publish(): void {
    for (const listener of this.#listeners) {
      listener();
    }
  }
}

/** Returns whether an error code means that the process is gone, which
 * is no failure of the process. */
export function isGone(code: string): boolean {
  return code === 'ERR_NO_SUCH_PROCESS' || code === 'ERR_PROCESS_EXITED';
}

function keyOf(entry: ProcessEntry): string {
  return `${entry.pid}@${entry.startTime}`;
}

/** Returns the entries of `selected` that have no ancestor in
 * `selected`, in pid order. */
export function rootsOf(
  selected: readonly ProcessEntry[],
  all: readonly ProcessEntry[],
): ProcessEntry[] {
  const parents = new Map(all.map((entry) => [entry.pid, entry.ppid]));
  const chosen = new Set(selected.map((entry) => entry.pid));
  return selected
    .filter((entry) => {
      let parent = entry.ppid;
      // A loop back to the entry, from reads of processes that changed in
      // between, ends the walk.
      for (
        let depth = 0;
        depth < MAX_DEPTH && parent > 0 && parent !== entry.pid;
        depth++
      ) {
        if (chosen.has(parent)) {
          return false;
        }
        parent = parents.get(parent) ?? 0;
      }
      return true;
    })
    .sort((a, b) => a.pid - b.pid);
}
