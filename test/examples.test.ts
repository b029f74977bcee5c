// The programs in examples/ run against real Ruby workloads and print
// what their comments promise.

import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import {
  parseSummary,
  ROOT,
  spawnGuarded,
  startWorkload,
} from './helpers/processes';

interface ExampleResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node examples/NAME ARGS` and collects its output. */
function runExample(
  t: ExecutionContext,
  name: string,
  args: Array<string | number>,
): Promise<ExampleResult> {
  const child = spawnGuarded(t, process.execPath, [
    path.join(ROOT, 'examples', name),
    ...args.map(String),
  ]);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts threads.rb and waits until its threads run. It prints its ready
 * line right after creating them, when some may not have started or set
 * their names yet.
 */
async function startThreads(t: ExecutionContext): Promise<number> {
  const workload = await startWorkload(t, 'threads.rb');
  await new Promise((resolve) => setTimeout(resolve, 500));
  return workload.pid;
}

test.serial('record-and-summarize prints the table', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const result = await runExample(t, 'record-and-summarize.mjs', [
    workload.pid,
    1.5,
  ]);
  t.is(result.code, 0, result.stderr);
  const rows = parseSummary(result.stdout);
  const alpha = rows.find((row) => row.name === 'Object#alpha');
  t.truthy(alpha, result.stdout);
  // known_split.rb spends 60 % of its time in alpha.
  t.true((alpha?.total ?? 0) > 45 && (alpha?.total ?? 0) < 75, result.stdout);
  t.regex(result.stderr, /^Recording process \d+ \(Ruby [\d.]+\) for 1\.5 s/);
  t.regex(result.stderr, /\d+ thread-samples .* ended by duration\.\n$/);
});

test.serial('record-and-summarize reports no process', async (t) => {
  const result = await runExample(t, 'record-and-summarize.mjs', [
    2 ** 22 + 1,
    1,
  ]);
  t.is(result.code, 2);
  t.regex(result.stderr, /^ERR_NO_SUCH_PROCESS: /);
});

test.serial('ci-check passes within the limit', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const result = await runExample(t, 'ci-check.js', [
    workload.pid,
    'Object#alpha',
    95,
    1,
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stdout,
    /^Object#alpha: \d+\.\d\d % total, within the limit of 95 % \(\d+ samples\)\n$/,
  );
});

test.serial('ci-check fails over the limit', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const result = await runExample(t, 'ci-check.js', [
    workload.pid,
    'Object#alpha',
    10,
    1,
  ]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stdout, /^Object#alpha: \d+\.\d\d % total, over the limit/);
});

test.serial('ci-check rejects bad arguments', async (t) => {
  const result = await runExample(t, 'ci-check.js', ['pid', 'Object#alpha']);
  t.is(result.code, 2);
  t.regex(result.stderr, /^usage: ci-check\.js PID FUNCTION MAX_PERCENT/);
});

test.serial('stream-samples prints each sample', async (t) => {
  const pid = await startThreads(t);
  const result = await runExample(t, 'stream-samples.mjs', [pid, 1]);
  t.is(result.code, 0, result.stderr);

  const lines = result.stdout.trimEnd().split('\n');
  // A frame prints as `name - path:line`, or as its name when it has no
  // path, such as `(garbage collection)`.
  const pattern = /^ +(\d+\.\d) ms {2}(tid \d+|\S+) {2}(.+ - .+:\d+|\(.+\))$/;
  const parsed = lines.map((line) => pattern.exec(line));
  t.true(
    parsed.every((match) => match !== null),
    result.stdout,
  );
  const threads = new Set(parsed.map((match) => match?.[2]));
  t.true(threads.has('left'), [...threads].join(', '));
  t.true(threads.has('right'), [...threads].join(', '));
  // Only running threads are sampled by default. A sleeper wakes every
  // 0.5 s and is runnable for a moment then, so a rare sample of it is
  // right; it must stay a small share.
  const sleeperLines = parsed.filter((match) =>
    match?.[2].startsWith('sleeper-'),
  ).length;
  t.true(sleeperLines * 20 <= lines.length, result.stdout);
  const times = parsed.map((match) => Number(match?.[1]));
  t.true(times.every((time, i) => i === 0 || time >= times[i - 1]));
  t.regex(
    result.stderr,
    new RegExp(`^${lines.length} samples, ended by duration\\n$`),
  );
});

test.serial('snapshot prints every thread', async (t) => {
  const pid = await startThreads(t);
  const result = await runExample(t, 'snapshot.js', [pid]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^Process \d+, Ruby [\d.]+\n/);
  for (const name of ['left', 'right']) {
    t.regex(
      result.stdout,
      new RegExp(`^${name} \\(\\w+, \\d+ frames\\): `, 'm'),
    );
  }
  for (const name of ['sleeper-1', 'sleeper-2']) {
    t.regex(
      result.stdout,
      new RegExp(`^${name} \\(blocked, \\d+ frames\\): Kernel#sleep$`, 'm'),
    );
  }
});

test.serial('workers prints each process of a preforking tree', async (t) => {
  const script = path.join(ROOT, 'test', 'workloads', 'forking.rb');
  const master = spawnGuarded(t, process.env.RBPROF_TEST_RUBY ?? 'ruby', [
    script,
    '2',
  ]);
  t.teardown(() => {
    master.kill('SIGTERM');
  });
  const lines: string[] = [];
  master.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter((line) => line !== ''));
  });
  while (lines.filter((line) => line.startsWith('worker ')).length < 2) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const masterPid = Number(lines[0].split(' ')[1]);
  const workers = lines
    .filter((line) => line.startsWith('worker '))
    .map((line) => Number(line.split(' ')[1]));
  const result = await runExample(t, 'workers.mjs', [masterPid, 1.5]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, new RegExp(`^${masterPid} \\(master\\): `, 'm'));
  for (const pid of workers) {
    const section = new RegExp(
      `^${pid} \\(worker of ${masterPid}\\): \\d+ samples on a CPU\\n\\s+[\\d.]+% self  (Integer#times|block in Object#spin)`,
      'm',
    );
    t.regex(result.stdout, section);
  }
});
