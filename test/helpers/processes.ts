// Child processes for live tests: Ruby workloads and the CLI. Every child
// is killed and reaped when its test ends, whether it passed or not.

import {
  spawn,
  type ChildProcess,
  type SpawnOptions,
} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import type { ExecutionContext } from 'ava';

export const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'bin', 'rbprof.js');
export const RUBY = process.env.RBPROF_TEST_RUBY ?? '/usr/bin/ruby';

/** How long a workload may take to print its `ready` line. */
const READY_TIMEOUT_MS = 30_000;

const children = new Set<ChildProcess>();

/** The cache folder of the CLIs that tests run, so that their default
 * output files stay out of the user's cache. */
export const TEST_CACHE_HOME = fs.mkdtempSync(
  path.join(os.tmpdir(), 'rbprof-test-cache-'),
);

// A test process that dies before its teardown still takes its children.
process.on('exit', () => {
  for (const child of children) {
    child.kill('SIGKILL');
  }
  fs.rmSync(TEST_CACHE_HOME, { recursive: true, force: true });
});

/** Creates a temporary folder that is removed when the test ends. */
export function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rbprof-${prefix}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Kills a child and waits until it has been reaped. */
export async function killAndReap(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

/** Spawns a child that the test's teardown kills and reaps. */
export function spawnGuarded(
  t: ExecutionContext,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
  children.add(child);
  t.teardown(() => killAndReap(child));
  return child;
}

export interface Workload {
  readonly pid: number;
  readonly child: ChildProcess;
}

/**
 * Starts `test/workloads/<name>` with Ruby and waits for its `ready PID`
 * line.
 */
export async function startWorkload(
  t: ExecutionContext,
  name: string,
  args: readonly string[] = [],
): Promise<Workload> {
  const script = path.join(ROOT, 'test', 'workloads', name);
  const child = spawnGuarded(t, RUBY, [script, ...args]);
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`${name} printed no ready line in ${READY_TIMEOUT_MS} ms`),
        ),
      READY_TIMEOUT_MS,
    );
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${name} exited (code ${code}, signal ${signal}) before it was ready`,
        ),
      );
    });
  });
  return { pid, child };
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Kill the CLI after this many milliseconds; the result then shows
   * the signal. */
  readonly timeoutMs?: number;
  /** Runs the CLI through this command and arguments, such as setpriv. */
  readonly prefix?: readonly string[];
  /** Called with the child once the CLI wrote `text` to stderr. */
  readonly onStderr?: { text: string; then: (child: ChildProcess) => void };
  /** Variables to add to the environment; `XDG_CACHE_HOME` is
   * `TEST_CACHE_HOME` unless set here. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs `rbprof ARGS` and collects its output and exit code. */
export function runCli(
  t: ExecutionContext,
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const prefix = options.prefix ?? [];
  const command = prefix.length > 0 ? prefix[0] : process.execPath;
  const commandArgs =
    prefix.length > 0
      ? [...prefix.slice(1), process.execPath, CLI, ...args]
      : [CLI, ...args];
  const child = spawnGuarded(t, command, commandArgs, {
    env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME, ...options.env },
  });
  let stdout = '';
  let stderr = '';
  let notified = false;
  child
    .stdout!.setEncoding('utf8')
    .on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (
      options.onStderr &&
      !notified &&
      stderr.includes(options.onStderr.text)
    ) {
      notified = true;
      options.onStderr.then(child);
    }
  });
  const timer = setTimeout(
    () => child.kill('SIGKILL'),
    options.timeoutMs ?? 60_000,
  );
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Parses the rows of a `% self  % total  name` table. */
export function parseSummary(
  text: string,
): Array<{ self: number; total: number; name: string; path: string }> {
  const rows = [];
  for (const line of text.split('\n')) {
    const match = /^\s*(\d+\.\d\d)\s+(\d+\.\d\d)\s{2}(.*) - (.*)$/.exec(line);
    if (match !== null) {
      rows.push({
        self: Number(match[1]),
        total: Number(match[2]),
        name: match[3],
        path: match[4],
      });
    }
  }
  return rows;
}
