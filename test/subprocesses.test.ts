// Following the Ruby processes that descend from a target, with
// test/workloads/forking.rb: a parent that forks busy workers at once,
// one more when a trigger file appears, and a Ruby through a shell.

import { type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import test, { type ExecutionContext } from 'ava';

import {
  InvalidArgumentError,
  record,
  readRecording,
  type Profile,
} from 'rbprof';
import {
  ROOT,
  RUBY,
  parseSummary,
  runCli,
  spawnGuarded,
  tempDir,
} from './helpers/processes';

/** A running forking.rb and the `KIND PID` lines it printed. */
interface Tree {
  readonly child: ChildProcess;
  /** Resolves with the pid of the next line of this kind. */
  next(kind: string): Promise<number>;
}

function startTree(t: ExecutionContext, args: readonly string[]): Tree {
  const script = path.join(ROOT, 'test', 'workloads', 'forking.rb');
  const child = spawnGuarded(t, RUBY, [script, ...args]);
  // The workload kills its workers on TERM; teardowns run last first, so
  // this runs before the guard's SIGKILL.
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const wake of waiters.splice(0)) {
      wake();
    }
  });
  return {
    child,
    async next(kind) {
      for (;;) {
        const index = lines.findIndex((line) => line.startsWith(`${kind} `));
        if (index >= 0) {
          const [line] = lines.splice(index, 1);
          return Number(line.split(' ')[1]);
        }
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve);
          setTimeout(
            () => reject(new Error(`forking.rb printed no ${kind} line`)),
            20_000,
          ).unref();
        });
      }
    },
  };
}

/** Thread-samples of a process whose stack contains `name`. */
function samplesIn(profile: Profile, pid: number, name: string): number {
  const view = profile.byProcess().find((v) => v.pid === pid);
  const row = view?.rows.find((r) => r.function.name === name);
  return row?.totalSamples ?? 0;
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test.serial('record follows forked workers and one forked later', async (t) => {
  const dir = tempDir(t, 'subprocesses');
  const trigger = path.join(dir, 'fork-now');
  const tree = startTree(t, ['2', trigger]);
  const root = await tree.next('ready');
  const workers = [await tree.next('worker'), await tree.next('worker')];

  const recording = await record({
    pid: root,
    subprocesses: true,
    rateHz: 199,
  });
  t.true(recording.subprocesses);
  await waitFor(
    () =>
      workers.every(
        (pid) =>
          samplesIn(recording.profile(), pid, 'Object#worker_loop') >= 20,
      ),
    'samples of both workers',
  );
  fs.writeFileSync(trigger, '');
  const late = await tree.next('late');
  await waitFor(
    () => samplesIn(recording.profile(), late, 'Object#late_worker_loop') >= 20,
    'samples of the late worker',
  );
  const profile = await recording.stop();

  const processes = recording.processes();
  t.deepEqual([processes[0].pid, processes[0].parentPid], [root, 0]);
  t.deepEqual(
    processes
      .slice(1)
      .map((p) => [p.pid, p.parentPid])
      .sort((a, b) => a[0] - b[0]),
    [...workers, late].sort((a, b) => a - b).map((pid) => [pid, root]),
  );
  t.true(processes.every((p) => /^\d+\.\d+\.\d+/.test(p.rubyVersion)));
  // Each worker's samples name only its own loop.
  t.is(samplesIn(profile, late, 'Object#worker_loop'), 0);
  for (const pid of workers) {
    t.is(samplesIn(profile, pid, 'Object#late_worker_loop'), 0);
  }
  // The merged view counts every process.
  const merged = profile
    .rows()
    .find((r) => r.function.name === 'Object#worker_loop');
  t.truthy(merged);
  t.true(merged!.totalSamples >= 40);
});

test.serial('samples() reports processes as they come and go', async (t) => {
  const dir = tempDir(t, 'subprocesses');
  const trigger = path.join(dir, 'fork-now');
  const tree = startTree(t, ['1', trigger]);
  const root = await tree.next('ready');
  const worker = await tree.next('worker');
  const recording = await record({ pid: root, subprocesses: true });
  const events: Array<[string, number]> = [];
  const reader = (async () => {
    for await (const batch of recording.samples()) {
      for (const event of batch.processes) {
        events.push([event.kind, event.pid]);
      }
    }
  })();
  await waitFor(
    () => recording.processes().some((p) => p.pid === worker),
    'the worker to be attached',
  );
  fs.writeFileSync(trigger, '');
  const late = await tree.next('late');
  await waitFor(
    () => events.some(([kind, pid]) => kind === 'attached' && pid === late),
    'the late worker to be attached',
  );
  process.kill(late, 'SIGKILL');
  await waitFor(
    () => events.some(([kind, pid]) => kind === 'exited' && pid === late),
    'the late worker to be reported gone',
  );
  await recording.stop();
  await reader;
  const info = recording.processes().find((p) => p.pid === late);
  t.truthy(info?.exitedNs);
  t.true(info!.exitedNs! > info!.attachedNs);
  t.is(
    recording.processes().find((p) => p.pid === worker)?.exitedNs,
    undefined,
  );
});

test.serial('a Ruby started through a shell is followed', async (t) => {
  const dir = tempDir(t, 'subprocesses');
  const trigger = path.join(dir, 'fork-now');
  fs.writeFileSync(trigger, '');
  const tree = startTree(t, ['0', trigger, 'spawn']);
  const root = await tree.next('ready');
  await tree.next('late');
  const spawned = await tree.next('spawned');
  const recording = await record({ pid: root, subprocesses: true });
  await waitFor(
    () => samplesIn(recording.profile(), spawned, 'Object#spawned_loop') >= 10,
    'samples of the spawned Ruby',
  );
  await recording.stop();
  const info = recording.processes().find((p) => p.pid === spawned);
  t.is(info?.parentPid, root);
});

test('subprocesses must be a boolean', async (t) => {
  await t.throwsAsync(
    // @ts-expect-error: the option is checked at run time too.
    record({ pid: process.pid, subprocesses: 'yes' }),
    {
      instanceOf: InvalidArgumentError,
      message: /subprocesses must be true or false/,
    },
  );
});

test.serial(
  'CLI prints one table per process and report splits the raw file',
  async (t) => {
    const dir = tempDir(t, 'subprocesses');
    const raw = path.join(dir, 'tree.raw.jsonl');
    const tree = startTree(t, ['2']);
    const root = await tree.next('ready');
    const workers = [await tree.next('worker'), await tree.next('worker')];
    const result = await runCli(t, [
      'record',
      '--pid',
      String(root),
      '--subprocesses',
      '--by-process',
      '--duration',
      '2',
      '--raw-file',
      raw,
    ]);
    t.is(result.code, 0, result.stderr);
    t.regex(result.stderr, /Recording process \d+ and its Ruby subprocesses/);
    t.regex(result.stderr, new RegExp(`Sampled 3 processes: ${root} \\(Ruby `));
    for (const pid of workers) {
      // The heading shows the title each worker set in $0.
      const heading = new RegExp(
        `^Process ${pid} "forking worker [01]" \\(1 thread\\): \\d+ samples$`,
        'm',
      );
      t.regex(result.stdout, heading);
      const section = result.stdout
        .split(/^Process /m)
        .find((s) => s.startsWith(`${pid} `))!;
      const rows = parseSummary(section);
      t.true(
        rows.some((row) => row.name === 'Object#worker_loop' && row.total > 90),
      );
    }
    // The sleeping parent is not on a CPU, so it has no table of its own.
    t.notRegex(result.stdout, new RegExp(`^Process ${root} `, 'm'));

    const recorded = await readRecording(raw);
    t.deepEqual(
      recorded.profile
        .byProcess()
        .map((v) => v.pid)
        .sort(),
      [...workers].sort(),
    );
    const report = await runCli(t, ['report', '--input', raw, '--by-process']);
    t.is(report.code, 0, report.stderr);
    for (const pid of workers) {
      t.regex(report.stdout, new RegExp(`^Process ${pid} `, 'm'));
    }
    const bad = await runCli(t, [
      'report',
      '--input',
      raw,
      '--by-process',
      '--format',
      'collapsed',
    ]);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /--by-process prints summary tables/);
    const both = await runCli(t, [
      'record',
      '--pid',
      String(root),
      '--by-thread',
      '--by-process',
    ]);
    t.is(both.code, 2);
  },
);
