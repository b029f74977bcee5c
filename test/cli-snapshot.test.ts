// `rbprof snapshot` against a real Ruby process and a core file of one.
// The core tests need gcore (from gdb) and are skipped without it.

import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import test, { type ExecutionContext } from 'ava';

import type { Snapshot, ThreadSnapshot } from 'rbprof';
import { EXIT_CODES } from '../dist/cli/errors';
import {
  runCli,
  startWorkload,
  type Workload,
  tempDir,
} from './helpers/processes';

// One malloc arena keeps a core of the threads workload near 80 MB, where
// each extra arena adds 64 MB of reserved address space that gcore writes.
process.env.MALLOC_ARENA_MAX = '1';

const GCORE = (process.env.PATH ?? '')
  .split(path.delimiter)
  .map((dir) => path.join(dir, 'gcore'))
  .find((file) => existsSync(file));

/** Starts the threads workload and gives its threads time to name
 * themselves and enter their loops. */
async function startThreads(t: ExecutionContext): Promise<Workload> {
  const workload = await startWorkload(t, 'threads.rb');
  await new Promise((resolve) => setTimeout(resolve, 300));
  return workload;
}

/** Writes a core of `pid` with gcore and returns its path. */
async function writeCore(gcore: string, dir: string, pid: number) {
  await promisify(execFile)(gcore, ['-o', path.join(dir, 'core'), String(pid)]);
  return path.join(dir, `core.${pid}`);
}

function thread(snapshot: Snapshot, name: string): ThreadSnapshot {
  const found = snapshot.threads.find((t) => t.name === name);
  if (found === undefined) {
    throw new Error(`no thread ${name} in ${JSON.stringify(snapshot)}`);
  }
  return found;
}

/** Checks the workload's threads, methods and native ids. */
function checkThreads(t: ExecutionContext, snapshot: Snapshot, pid: number) {
  t.is(snapshot.pid, pid);
  t.is(snapshot.threads.length, 5);
  const ids = snapshot.threads.map((entry) => entry.tid);
  t.true(ids.includes(pid), `the main thread's id is the pid: ${ids}`);
  t.true(
    ids.every((id) => id > 0),
    `${ids}`,
  );
  const methods: Array<[string, string]> = [
    ['left', 'Object#burn_left'],
    ['right', 'Object#burn_right'],
    ['sleeper-1', 'Object#nap'],
    ['sleeper-2', 'Object#nap'],
  ];
  for (const [name, method] of methods) {
    const names = thread(snapshot, name).frames.map((frame) => frame.name);
    t.is(names[0], 'block in <main>', name);
    t.is(names[1], method, name);
  }
  for (const name of ['sleeper-1', 'sleeper-2']) {
    const frames = thread(snapshot, name).frames;
    t.is(frames.at(-1)?.name, 'Kernel#sleep');
    t.is(frames.at(-1)?.kind, 'cfunc');
    t.true(frames[1]!.path.endsWith('threads.rb'), frames[1]!.path);
    t.is(frames[1]!.line, 11);
  }
}

test.serial('pid as text', async (t) => {
  const workload = await startThreads(t);
  const result = await runCli(t, ['snapshot', '--pid', String(workload.pid)]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stderr, '');

  const lines = result.stdout.split('\n');
  t.regex(lines[0]!, /^Process \d+, Ruby \d+\.\d+\.\d+, 5 threads$/);
  t.true(
    lines.includes(`Thread <unnamed> (native id ${workload.pid}): blocked`),
    result.stdout,
  );
  for (const name of ['sleeper-1', 'sleeper-2']) {
    t.regex(
      result.stdout,
      new RegExp(`^Thread ${name} \\(native id \\d+\\): blocked$`, 'm'),
    );
  }
  const busy =
    /^Thread (left|right) \(native id \d+\): (running|waiting_gvl)$/m;
  t.regex(result.stdout, busy);

  // Frames follow their thread's header, outermost first.
  const left = lines.findIndex((line) => line.startsWith('Thread left '));
  t.regex(lines[left + 1]!, /^ {2}block in <main> - .*threads\.rb:15$/);
  t.regex(lines[left + 2]!, /^ {2}Object#burn_left - .*threads\.rb:5$/);
});

test.serial('pid as JSON', async (t) => {
  const workload = await startThreads(t);
  const result = await runCli(t, [
    'snapshot',
    '--pid',
    String(workload.pid),
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const snapshot = JSON.parse(result.stdout) as Snapshot;
  checkThreads(t, snapshot, workload.pid);
  t.deepEqual(snapshot.warnings, []);

  const main = snapshot.threads.find((entry) => entry.tid === workload.pid);
  t.is(main?.name, undefined);
  t.is(main?.state, 'blocked');
  for (const name of ['sleeper-1', 'sleeper-2']) {
    t.is(thread(snapshot, name).state, 'blocked');
  }
  const busy = ['left', 'right'].map((name) => thread(snapshot, name).state);
  t.true(
    busy.some((state) => state === 'running' || state === 'waiting_gvl'),
    `${busy}`,
  );
});

const coreTest = GCORE === undefined ? test.skip : test.serial;

coreTest('core file as text and JSON', async (t) => {
  const workload = await startThreads(t);
  const core = await writeCore(GCORE!, tempDir(t, 'snapshot'), workload.pid);
  // The core keeps the stacks after the process is gone.
  workload.child.kill('SIGKILL');

  const text = await runCli(t, ['snapshot', '--core', core]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^Process \d+, Ruby \d+\.\d+\.\d+, 5 threads$/m);
  t.regex(text.stdout, /^Thread left \(native id \d+\): unknown$/m);
  t.regex(text.stdout, /^ {2}Object#nap - .*threads\.rb:11$/m);

  const json = await runCli(t, ['snapshot', '--core', core, '--json']);
  t.is(json.code, 0, json.stderr);
  const snapshot = JSON.parse(json.stdout) as Snapshot;
  checkThreads(t, snapshot, workload.pid);
  t.true(snapshot.threads.every((entry) => entry.state === 'unknown'));
});

test('file that is not a core', async (t) => {
  const file = path.join(tempDir(t, 'snapshot'), 'core.garbage');
  writeFileSync(file, 'not a core file\n');
  const result = await runCli(t, ['snapshot', '--core', file]);
  t.is(result.code, EXIT_CODES.invalidCore);
  t.is(result.stdout, '');
  t.true(
    result.stderr.startsWith(
      `rbprof: ${file} is not a usable core file: not an ELF file`,
    ),
    result.stderr,
  );
  t.true(result.stderr.includes('gcore PID'), result.stderr);
});

const usageErrors: Array<[string, string[], RegExp]> = [
  ['neither pid nor core', ['snapshot'], /one of --pid or --core/],
  [
    'both pid and core',
    ['snapshot', '--pid', '1', '--core', 'core.1'],
    /cannot be used with/,
  ],
  [
    'binary with pid',
    ['snapshot', '--pid', '1', '--binary', 'libruby.so'],
    /cannot be used with/,
  ],
  ['binary alone', ['snapshot', '--binary', 'libruby.so'], /requires --core/],
];
for (const [title, args, message] of usageErrors) {
  test(`usage error: ${title}`, async (t) => {
    const result = await runCli(t, args);
    t.is(result.code, EXIT_CODES.usage);
    t.is(result.stdout, '');
    t.regex(result.stderr, message);
  });
}
