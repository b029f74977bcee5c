// --threads and --by-thread of `rbprof record` and `rbprof report` against
// test/workloads/threads.rb, whose threads are named left, right,
// sleeper-1 and sleeper-2.

import path from 'node:path';

import test from 'ava';

import { readRecording } from 'rbprof';
import { runCli, startWorkload, tempDir } from './helpers/processes';

/** Returns the `Thread "NAME" (native id N): M samples` headings. */
function headings(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => /^(Thread ".*"|Unnamed thread) \(native id /.test(line));
}

/** Returns the text under each `Thread "NAME"` heading by name. */
function sectionsByThread(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  let current: string[] | undefined;
  for (const line of stdout.split('\n')) {
    const heading = /^Thread "(.*)" \(native id /.exec(line);
    if (heading !== null) {
      current = [];
      sections.set(heading[1], '');
    }
    current?.push(line);
    if (current !== undefined) {
      sections.set([...sections.keys()].at(-1)!, current.join('\n'));
    }
  }
  return sections;
}

test.serial('record --threads samples only those threads', async (t) => {
  const dir = tempDir(t, 'cli-threads');
  const raw = path.join(dir, 'recording.raw.jsonl');
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--duration',
    '1',
    '--idle',
    '--threads',
    'left,sleeper-1',
    '--raw-file',
    raw,
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /Object#burn_left/);
  t.notRegex(result.stdout, /Object#burn_right/);

  const recording = await readRecording(raw);
  const names = recording.profile.threads.map((thread) => thread.name);
  t.deepEqual(names.sort(), ['left', 'sleeper-1']);
});

test.serial('record --by-thread heads each thread', async (t) => {
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--duration',
    '1',
    '--no-raw',
    '--by-thread',
    '--threads',
    'left,right',
  ]);
  t.is(result.code, 0, result.stderr);
  const lines = headings(result.stdout);
  t.is(lines.length, 2, result.stdout);
  for (const name of ['left', 'right']) {
    const heading = lines.find((line) => line.startsWith(`Thread "${name}"`));
    t.regex(heading ?? '', /^Thread "\w+" \(native id \d+\): \d+ samples$/);
  }
  const sections = sectionsByThread(result.stdout);
  t.regex(sections.get('left') ?? '', /Object#burn_left/);
  t.notRegex(sections.get('left') ?? '', /Object#burn_right/);
  t.regex(sections.get('right') ?? '', /Object#burn_right/);
  t.notRegex(sections.get('right') ?? '', /Object#burn_left/);
});

test.serial('report --threads and --by-thread', async (t) => {
  const dir = tempDir(t, 'cli-threads');
  const raw = path.join(dir, 'recording.raw.jsonl');
  const workload = await startWorkload(t, 'threads.rb');
  const recorded = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--duration',
    '1',
    '--idle',
    '--silent',
    '--raw-file',
    raw,
  ]);
  t.is(recorded.code, 0, recorded.stderr);
  const { profile } = await readRecording(raw);
  const right = profile.threads.find((thread) => thread.name === 'right');
  t.truthy(right);

  // A native id selects as well as a name.
  const byId = await runCli(t, [
    'report',
    '--input',
    raw,
    '--threads',
    String(right!.tid),
  ]);
  t.is(byId.code, 0, byId.stderr);
  t.regex(byId.stdout, /Object#burn_right/);
  t.notRegex(byId.stdout, /Object#burn_left/);

  const collapsed = await runCli(t, [
    'report',
    '--input',
    raw,
    '--format',
    'collapsed',
    '--threads',
    'left',
  ]);
  t.is(collapsed.code, 0, collapsed.stderr);
  t.regex(collapsed.stdout, /Object#burn_left/);
  t.notRegex(collapsed.stdout, /Object#burn_right/);

  const byThread = await runCli(t, [
    'report',
    '--input',
    raw,
    '--idle',
    '--by-thread',
  ]);
  t.is(byThread.code, 0, byThread.stderr);
  const names = headings(byThread.stdout).map((line) => line.split(' (')[0]);
  for (const name of ['left', 'right', 'sleeper-1', 'sleeper-2']) {
    t.true(names.includes(`Thread "${name}"`), byThread.stdout);
  }
});

test.serial('report rejects --by-thread with pprof', async (t) => {
  const result = await runCli(t, [
    'report',
    '--input',
    '/nonexistent',
    '--format',
    'pprof',
    '--by-thread',
  ]);
  t.is(result.code, 2, result.stderr);
  t.regex(result.stderr, /--by-thread prints summary tables/);
});

test.serial('record warns when --threads matches no thread', async (t) => {
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--duration',
    '1.5',
    '--no-raw',
    '--threads',
    'lfet',
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stderr,
    /warning: no thread's name or native id matches the thread selection \(lfet\); the threads seen are .*"left" \(\d+\)/,
  );
});
