// How a recording of a real Ruby process starts, ends and cleans up. The
// tests cover an AbortSignal, two recordings at once and the native
// sampler thread, named `rbprof-PID` in /proc/self/task/*/comm. A Node
// process must also exit on its own once its recording has ended.

import fs from 'node:fs';
import path from 'node:path';

import test from 'ava';

import {
  NoSuchProcessError,
  NotRubyError,
  record,
  type Profile,
  type SummaryRow,
} from 'rbprof';
import { ROOT, spawnGuarded, startWorkload } from './helpers/processes';

/** Returns the names (comm) of the threads of this Node process. */
function threadNames(): string[] {
  const names: string[] = [];
  for (const task of fs.readdirSync('/proc/self/task')) {
    try {
      names.push(
        fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim(),
      );
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return names;
}

/** Returns the sampler threads of this process, such as `rbprof-1234`. */
function samplerThreads(): string[] {
  return threadNames().filter((name) => name.startsWith('rbprof-'));
}

/**
 * Waits until `condition` holds, for at most `timeoutMs`, and returns
 * whether it did. A joined thread can stay in /proc/self/task for a
 * moment after the join returns, so checks of its absence wait briefly.
 */
async function eventually(
  condition: () => boolean,
  timeoutMs = 2000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/**
 * Returns the thread count of this process once the libuv thread pool
 * runs, which starts on the first asynchronous file operation and then
 * stays. Counts taken after this one differ only by threads that
 * recordings start.
 */
async function settledThreadCount(): Promise<number> {
  await fs.promises.readFile(__filename);
  return threadNames().length;
}

function rowOf(rows: SummaryRow[], name: string): SummaryRow | undefined {
  return rows.find((row) => row.function.name === name);
}

test.serial('abort ends recording with data', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const controller = new AbortController();
  const recording = await record({
    pid: workload.pid,
    signal: controller.signal,
  });
  let streamed = 0;
  for await (const batch of recording.samples()) {
    streamed += batch.samples.length;
    if (streamed >= 20) {
      controller.abort();
    }
  }

  const profile = await recording.done;
  t.is(profile.end?.reason, 'aborted');
  t.true(profile.sampleCount >= streamed, `${profile.sampleCount} samples`);
  t.true(profile.stats.taken > 0);
  t.truthy(rowOf(profile.rows(), 'Object#alpha'), profile.toSummary());
  t.true(await eventually(() => samplerThreads().length === 0));
});

test.serial('aborted signal ends at once', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const recording = await record({
    pid: workload.pid,
    signal: AbortSignal.abort(),
  });
  const profile = await recording.done;
  t.is(profile.end?.reason, 'aborted');
  t.is(profile.target.pid, workload.pid);
  t.true(await eventually(() => samplerThreads().length === 0));
});

test.serial('concurrent recordings stay apart', async (t) => {
  const split = await startWorkload(t, 'known_split.rb');
  const threads = await startWorkload(t, 'threads.rb');
  const [splitRecording, threadsRecording] = await Promise.all([
    record({ pid: split.pid, durationSeconds: 2 }),
    record({ pid: threads.pid, durationSeconds: 2 }),
  ]);
  const expected = [`rbprof-${split.pid}`, `rbprof-${threads.pid}`].sort();
  // Each thread names itself once it runs, which may be just after
  // record() resolves.
  t.true(
    await eventually(() => samplerThreads().sort().join() === expected.join()),
    samplerThreads().join(', '),
  );

  const [splitProfile, threadsProfile]: Profile[] = await Promise.all([
    splitRecording.done,
    threadsRecording.done,
  ]);
  t.is(splitProfile.end?.reason, 'duration');
  t.is(threadsProfile.end?.reason, 'duration');
  t.is(splitProfile.target.pid, split.pid);
  t.is(threadsProfile.target.pid, threads.pid);
  t.true(splitProfile.threads.every((thread) => thread.pid === split.pid));
  t.true(threadsProfile.threads.every((thread) => thread.pid === threads.pid));

  // known_split.rb spends 60 % of its time in alpha, 30 % in beta.
  const splitRows = splitProfile.rows();
  const alpha = rowOf(splitRows, 'Object#alpha')?.totalPercent ?? 0;
  const beta = rowOf(splitRows, 'Object#beta')?.totalPercent ?? 0;
  t.true(alpha > 45 && alpha < 75, splitProfile.toSummary());
  t.true(beta > 18 && beta < 42, splitProfile.toSummary());
  t.is(rowOf(splitRows, 'Object#burn_left'), undefined);
  t.is(rowOf(splitRows, 'Object#burn_right'), undefined);

  // threads.rb burns in two named threads, each in its own method.
  t.is(rowOf(threadsProfile.rows(), 'Object#alpha'), undefined);
  const byName = new Map(
    threadsProfile.byThread().map((view) => [view.thread.name, view]),
  );
  const left = byName.get('left');
  const right = byName.get('right');
  t.is(rowOf(left?.rows ?? [], 'Object#burn_left')?.totalPercent, 100);
  t.is(rowOf(left?.rows ?? [], 'Object#burn_right'), undefined);
  t.is(rowOf(right?.rows ?? [], 'Object#burn_right')?.totalPercent, 100);
  t.is(rowOf(right?.rows ?? [], 'Object#burn_left'), undefined);
  // Sleepers are on a CPU only for a moment each time they wake.
  const sleeperSamples =
    (byName.get('sleeper-1')?.sampleCount ?? 0) +
    (byName.get('sleeper-2')?.sampleCount ?? 0);
  t.true(
    sleeperSamples * 10 < threadsProfile.sampleCount,
    `${sleeperSamples} of ${threadsProfile.sampleCount} samples from sleepers`,
  );

  t.true(await eventually(() => samplerThreads().length === 0));
});

test.serial('sampler thread ends after stop', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const before = await settledThreadCount();
  t.deepEqual(samplerThreads(), []);

  const recording = await record({ pid: workload.pid });
  // The thread names itself once it runs, which may be just after
  // record() resolves.
  t.true(
    await eventually(() => samplerThreads().includes(`rbprof-${workload.pid}`)),
    samplerThreads().join(', '),
  );
  t.is(threadNames().length, before + 1);

  const profile = await recording.stop();
  t.is(profile.end?.reason, 'stopped');
  t.true(
    await eventually(() => samplerThreads().length === 0),
    samplerThreads().join(', '),
  );
  t.true(await eventually(() => threadNames().length === before));
});

test.serial('sampler thread ends with target', async (t) => {
  // The workload exits by itself after one second.
  const workload = await startWorkload(t, 'known_split.rb', ['1']);
  const before = await settledThreadCount();
  const recording = await record({ pid: workload.pid });
  // The thread names itself once it runs, which may be just after
  // record() resolves.
  t.true(
    await eventually(() => samplerThreads().includes(`rbprof-${workload.pid}`)),
    samplerThreads().join(', '),
  );

  const profile = await recording.done;
  t.is(profile.end?.reason, 'process_exited');
  t.true(profile.sampleCount > 0);
  t.true(await eventually(() => samplerThreads().length === 0));
  t.true(await eventually(() => threadNames().length === before));
});

test.serial('failed start leaves no thread', async (t) => {
  const before = await settledThreadCount();

  const sleeper = spawnGuarded(t, 'sleep', ['30']);
  await t.throwsAsync(record({ pid: sleeper.pid! }), {
    instanceOf: NotRubyError,
  });
  // A pid above the kernel's maximum (pid_max is at most 2^22).
  await t.throwsAsync(record({ pid: 2 ** 22 + 1 }), {
    instanceOf: NoSuchProcessError,
  });

  t.deepEqual(samplerThreads(), []);
  t.true(await eventually(() => threadNames().length === before));
});

/**
 * Returns a Node program that records process `pid` with `options`, the
 * text of an object literal's entries, and a signal. It then runs `end`,
 * which may use `recording` and `controller`, prints how the recording
 * ended and its sample count, and leaves the event loop to run dry.
 */
function recorderScript(pid: number, options: string, end: string): string {
  const library = JSON.stringify(path.join(ROOT, 'dist', 'index.js'));
  return `
    const { record } = require(${library});
    (async () => {
      const controller = new AbortController();
      const recording = await record({
        pid: ${pid},
        signal: controller.signal,
        ${options}
      });
      ${end}
      const profile = await recording.done;
      console.log(profile.end.reason, profile.sampleCount);
    })();
  `;
}

/** Ways to end a recording: options, code, and the expected end reason. */
const ENDINGS: Array<[string, string, string, string]> = [
  ['durationSeconds', 'durationSeconds: 1', '', 'duration'],
  ['stop', '', 'setTimeout(() => recording.stop(), 500);', 'stopped'],
  ['abort', '', 'setTimeout(() => controller.abort(), 500);', 'aborted'],
  [
    'samples loop',
    'durationSeconds: 1',
    'for await (const batch of recording.samples()) {}',
    'duration',
  ],
];

for (const [ending, options, end, reason] of ENDINGS) {
  test.serial(`node exits after ${ending}`, async (t) => {
    const workload = await startWorkload(t, 'known_split.rb');
    const child = spawnGuarded(t, process.execPath, [
      '-e',
      recorderScript(workload.pid, options, end),
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));

    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    const timedOut = new Promise<string>((resolve) =>
      setTimeout(() => resolve('no exit within 15 s'), 15_000).unref(),
    );
    t.is(await Promise.race([exited, timedOut]), 0, `${stdout}${stderr}`);
    t.regex(stdout, new RegExp(`^${reason} [1-9]\\d*\n$`));
  });
}
