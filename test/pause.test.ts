// Sampling with --pause against real Ruby processes: the target still
// gets its signals, nothing stays stopped when rbprof is killed, and the
// pauses are reported and recorded.

import fs from 'node:fs';
import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { readRecording } from '../dist/index';
import { describeEnd } from '../dist/cli/record';
import { ProfileData } from '../dist/profile/data';
import { Profile } from '../dist/profile/profile';
import type { SamplerStats } from '../dist/types';
import { makeBatch } from './helpers/batches';
import {
  killAndReap,
  runCli,
  spawnGuarded,
  startWorkload,
  type Workload,
  tempDir,
} from './helpers/processes';

/** How long a process may take to react to a signal. A liveness bound on
 * a loaded machine, not a timing requirement. */
const REACTION_MS = 5_000;

/** Starts the server-like workload, which writes its files to `dir`. */
function startServer(
  t: ExecutionContext,
  dir: string,
  sleepers = 0,
): Promise<Workload> {
  return startWorkload(t, 'term_server.rb', [dir, String(sleepers)]);
}

/** Resolves with the exit of a child, or null after `ms` milliseconds. */
function exitWithin(
  child: Workload['child'],
  ms: number,
): Promise<{ code: number | null; signal: string | null } | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Returns each thread's task state letter and tracer. */
function tasks(
  pid: number,
): Array<{ tid: string; state: string; tracer: number }> {
  return fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
      const tracer = Number(/^TracerPid:\s*(\d+)/m.exec(status)?.[1]);
      return [{ tid, state, tracer }];
    } catch {
      // The thread exited while it was listed.
      return [];
    }
  });
}

function readCount(dir: string): number {
  return Number(fs.readFileSync(path.join(dir, 'count'), 'utf8'));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test.serial('paused target receives SIGTERM', async (t) => {
  const dir = tempDir(t, 'pause');
  const workload = await startServer(t, dir);
  let targetExit: ReturnType<typeof exitWithin> | undefined;
  const result = await runCli(
    t,
    [
      'record',
      '--pause',
      '--rate',
      '999',
      '--pid',
      String(workload.pid),
      '--no-raw',
      '--silent',
    ],
    {
      onStderr: {
        text: 'Recording process',
        then: () => {
          setTimeout(() => {
            process.kill(workload.pid, 'SIGTERM');
            targetExit = exitWithin(workload.child, REACTION_MS);
          }, 1000);
        },
      },
      timeoutMs: 30_000,
    },
  );

  t.truthy(targetExit, 'SIGTERM was sent');
  t.deepEqual(
    await targetExit,
    { code: 0, signal: null },
    'the target exits with status 0',
  );
  t.true(fs.existsSync(path.join(dir, 'term')), 'the TERM handler ran');

  t.is(result.signal, null);
  t.is(result.code, 0, result.stderr);
  t.true(
    result.stderr.includes(`Process ${workload.pid} ended`),
    result.stderr,
  );
  t.true(
    result.stderr.includes("Each sample stops the target's threads"),
    result.stderr,
  );
  t.regex(result.stderr, /^Pauses of the target: mean \d+(\.\d)? (us|ms)/m);
  // Paused reads do not tear, but the ticks while the exiting target
  // takes its VM apart can fail to find a thread list.
  const failed = /^Samples: \d+ taken, \d+ late, (\d+) failed/m.exec(
    result.stderr,
  );
  t.truthy(failed, result.stderr);
  t.true(Number(failed?.[1]) <= 3, result.stderr);
});

test.serial('SIGKILL of rbprof leaves the target running', async (t) => {
  const dir = tempDir(t, 'pause');
  // Sleeping threads make each pause longer, so a kill is more likely to
  // land in one.
  const workload = await startServer(t, dir, 16);
  for (let round = 0; round < 5; round++) {
    const result = await runCli(
      t,
      [
        'record',
        '--pause',
        '--rate',
        '999',
        '--pid',
        String(workload.pid),
        '--no-raw',
        '--silent',
      ],
      {
        onStderr: {
          text: 'Recording process',
          then: (child) =>
            setTimeout(() => child.kill('SIGKILL'), 200 + 60 * round),
        },
        timeoutMs: 30_000,
      },
    );

    t.is(result.signal, 'SIGKILL', result.stderr);
    for (const task of tasks(workload.pid)) {
      t.false(
        task.state === 't' || task.state === 'T',
        `round ${round}: thread ${task.tid} is in state ${task.state}`,
      );
      t.is(task.tracer, 0, `round ${round}: thread ${task.tid} is traced`);
    }
  }

  // The main thread writes its count every 10 ms while it runs.
  const before = readCount(dir);
  const deadline = Date.now() + REACTION_MS;
  let after = before;
  while (after <= before && Date.now() < deadline) {
    await sleep(50);
    after = readCount(dir);
  }
  t.true(after > before, `the count stayed at ${before}`);
  t.is(workload.child.exitCode, null);
});

test.serial('pause flags exclude each other', async (t) => {
  for (const command of ['record', 'top']) {
    const result = await runCli(t, [
      command,
      '--pause',
      '--nonblocking',
      '--pid',
      '1',
    ]);
    t.is(result.code, 2, `${command}: ${result.stderr}`);
    t.regex(
      result.stderr,
      /option '--pause' cannot be used with option '--nonblocking'/,
      command,
    );
  }
});

test.serial('traced target cannot be paused', async (t) => {
  const workload = await startWorkload(t, 'threads.rb');
  const strace = spawnGuarded(t, 'strace', [
    '-f',
    '-o',
    '/dev/null',
    '-p',
    String(workload.pid),
  ]);
  const started = await new Promise<boolean>((resolve) => {
    strace.once('error', () => resolve(false));
    strace.once('spawn', () => resolve(true));
  });
  if (!started) {
    t.log('skipped: strace is not installed');
    t.pass();
    return;
  }
  const deadline = Date.now() + REACTION_MS;
  while (tasks(workload.pid).some((task) => task.tracer === 0)) {
    if (Date.now() > deadline) {
      t.fail('strace did not attach');
      return;
    }
    await sleep(20);
  }
  const result = await runCli(t, [
    'record',
    '--pause',
    '--pid',
    String(workload.pid),
    '--duration',
    '1',
    '--no-raw',
  ]);
  t.is(result.code, 6, result.stderr);
  t.regex(result.stderr, /already traced by process \d+ \(strace\)/);
  t.true(result.stderr.includes('--nonblocking'), result.stderr);
  await killAndReap(strace);
});

test.serial('raw recording keeps the pause', async (t) => {
  const dir = tempDir(t, 'pause');
  const workload = await startWorkload(t, 'recursive.rb');
  for (const mode of ['--pause', '--nonblocking']) {
    const file = path.join(dir, `${mode.slice(2)}.jsonl`);
    const result = await runCli(t, [
      'record',
      mode,
      '--pid',
      String(workload.pid),
      '--duration',
      '1',
      '--silent',
      '--raw-file',
      file,
    ]);
    t.is(result.code, 0, result.stderr);
    const raw = await readRecording(file);
    const { stats } = raw.profile;
    if (mode === '--pause') {
      t.is(raw.pause, true);
      t.true((stats.pause?.count ?? 0) > 0, JSON.stringify(stats));
      t.true((stats.pause?.maxNs ?? 0) > 0, JSON.stringify(stats));
      t.true(stats.pause!.totalNs >= stats.pause!.maxNs);
      t.is(stats.failed, 0, JSON.stringify(stats));
    } else {
      t.is(raw.pause, false);
      t.is(stats.pause, undefined);
    }
  }
});

test.serial('snapshot --pause reads every thread', async (t) => {
  const workload = await startWorkload(t, 'threads.rb');
  // The workload prints its ready line right after creating its threads,
  // before all of them have set their names.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const result = await runCli(t, [
    'snapshot',
    '--pause',
    '--pid',
    String(workload.pid),
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const snapshot = JSON.parse(result.stdout) as {
    threads: Array<{ name?: string; state: string; frames: unknown[] }>;
  };
  const left = snapshot.threads.find((thread) => thread.name === 'left');
  t.truthy(left, result.stdout);
  t.true((left?.frames.length ?? 0) > 0);
  // States come from before the pause, not from the stop itself.
  const sleeper = snapshot.threads.find(
    (thread) => thread.name === 'sleeper-1',
  );
  t.is(sleeper?.state, 'blocked');
  for (const task of tasks(workload.pid)) {
    t.not(task.state, 't', `thread ${task.tid} stayed stopped`);
  }
});

test('pause flag is rejected with --core', async (t) => {
  const result = await runCli(t, ['snapshot', '--pause', '--core', 'x']);
  t.is(result.code, 2, result.stderr);
});

function profileWithStats(stats: SamplerStats): Profile {
  const data = new ProfileData();
  data.add(
    makeBatch({
      functions: [[0, 'Object#work']],
      samples: [{ stack: [0] }],
      stats,
    }),
  );
  return new Profile({
    target: {
      pid: 4242,
      rubyVersion: '3.1.2',
      layoutVersion: '3.1.0',
      layoutVerified: true,
      rubyBinary: '/usr/bin/ruby',
    },
    data,
    stats,
    durationSeconds: 1,
  });
}

test('end report gives the pause per sample', (t) => {
  const counts = { taken: 10, late: 0, failed: 0, threadSamples: 10 };
  const paused = describeEnd(
    profileWithStats({
      ...counts,
      pause: { count: 10, totalNs: 1_000_000, maxNs: 2_400_000 },
    }),
  );
  t.true(
    paused.includes(
      'Pauses of the target: mean 100 us, max 2.4 ms (10 pauses).\n',
    ),
    paused,
  );
  const running = describeEnd(profileWithStats(counts));
  t.false(running.includes('Pauses'), running);
});

test('failed samples suggest --pause', (t) => {
  const text = describeEnd(
    profileWithStats({ taken: 100, late: 0, failed: 20, threadSamples: 80 }),
  );
  t.true(text.includes('--pause prevents that'), text);
});
