// How rbprof sidecar follows its targets: an application that restarts,
// workers that come and go, and recordings that are replaced while a
// request is open. The application and the sidecar share a new PID
// namespace, as the containers of a pod with a shared process namespace
// do.

import fs from 'node:fs';
import path from 'node:path';

import test from 'ava';

import {
  countSamples,
  decodePprof,
  type DecodedProfile,
} from './helpers/pprof';
import {
  appCommand,
  HOT_PATH,
  request,
  startSidecar,
  waitForMetrics,
} from './helpers/sidecar';
import { tempDir } from './helpers/processes';

const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;

/** Returns the thread-samples of each pid label. */
function samplesByPid(profile: DecodedProfile): Map<number, number> {
  const counts = new Map<number, number>();
  for (const sample of profile.samples) {
    const pid = sample.labels.pid as number;
    counts.set(pid, (counts.get(pid) ?? 0) + sample.values[0]);
  }
  return counts;
}

async function scrape(url: string): Promise<DecodedProfile> {
  const result = await request(url);
  if (result.status !== 200) {
    throw new Error(`${url} responded with ${result.status}: ${result.body}`);
  }
  return decodePprof(result.body);
}

/** Returns the command of an application that runs twice: the first
 * run exits when `stop-1` appears in `dir`, and the second runs until the
 * test ends. */
function restartingApp(dir: string): string {
  const runs = [1, 2]
    .map((run) => appCommand(['--stop-file', path.join(dir, `stop-${run}`)]))
    .join('; ');
  return `(${runs})`;
}

asRoot('restarted app is picked up', async (t) => {
  const dir = tempDir(t, 'sidecar');
  const sidecar = await startSidecar(t, { app: restartingApp(dir) });
  const first = Number((await sidecar.waitForOutput(/^ready (\d+)$/))[1]);
  const before = await scrape(sidecar.url('/debug/pprof/profile?seconds=1'));
  t.deepEqual([...samplesByPid(before).keys()], [first]);

  const linesBefore = sidecar.lines.length;
  fs.writeFileSync(path.join(dir, 'stop-1'), '');
  const changed = await sidecar.waitForLog(
    (line) => line.msg === 'target changed',
    linesBefore,
  );
  const outputs = sidecar.output.filter((line) => line.startsWith('ready '));
  const second = Number(outputs[1]?.slice('ready '.length));
  t.not(second, first);
  t.is(changed.pid, second);
  t.is(changed.previousPid, first);

  const after = await scrape(sidecar.url('/debug/pprof/profile?seconds=1'));
  t.deepEqual([...samplesByPid(after).keys()], [second]);
  t.true(
    countSamples(after, (sample) => sample.functions.includes(HOT_PATH)) > 0,
  );
  const values = await waitForMetrics(
    sidecar,
    (candidate) => candidate.get('rbprof_sidecar_targets') === 1,
  );
  t.is(values.get('rbprof_sidecar_targets'), 1);
});

asRoot('scrape spans an app restart', async (t) => {
  const dir = tempDir(t, 'sidecar');
  const sidecar = await startSidecar(t, { app: restartingApp(dir) });
  const first = Number((await sidecar.waitForOutput(/^ready (\d+)$/))[1]);
  const pending = scrape(sidecar.url('/debug/pprof/profile?seconds=10'));
  await sidecar.waitForLog((line) => line.msg === 'recording started');
  // The first run must live long enough to be sampled: its first samples
  // reach the window a poll interval after the recording starts.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  fs.writeFileSync(path.join(dir, 'stop-1'), '');
  const started = await sidecar.waitForLog(
    (line) => line.msg === 'recording started' && line.pid !== first,
  );
  const profile = await pending;
  const counts = samplesByPid(profile);
  t.true((counts.get(first) ?? 0) > 0, 'samples of the first run');
  t.true(
    (counts.get(started.pid as number) ?? 0) > 0,
    'samples of the second run',
  );
});

asRoot('workers are followed', async (t) => {
  const sidecar = await startSidecar(t, {
    app: appCommand(['--workers', '2']),
  });
  const parent = Number((await sidecar.waitForOutput(/^ready (\d+)$/))[1]);
  await sidecar.waitForOutput(/^worker (\d+)$/);
  const workers = [
    ...new Set(
      sidecar.output
        .filter((line) => line.startsWith('worker '))
        .map((line) => Number(line.slice('worker '.length))),
    ),
  ];
  // Both workers have started once the second line is there.
  if (workers.length < 2) {
    const match = await sidecar.waitForOutput(/^worker (\d+)$/, 2);
    workers.push(Number(match[1]));
  }
  const profile = await scrape(sidecar.url('/debug/pprof/profile?seconds=2'));
  const counts = samplesByPid(profile);
  for (const worker of workers) {
    t.true((counts.get(worker) ?? 0) > 0, `samples of worker ${worker}`);
  }
  for (const pid of counts.keys()) {
    t.true(pid === parent || workers.includes(pid), `unexpected pid ${pid}`);
  }
  t.true(
    countSamples(profile, (sample) => sample.functions.includes(HOT_PATH)) > 0,
  );

  const only = await scrape(
    sidecar.url(`/debug/pprof/profile?seconds=1&pid=${workers[0]}`),
  );
  t.deepEqual([...samplesByPid(only).keys()], [workers[0]]);
});

asRoot('worker restart while serving', async (t) => {
  const dir = tempDir(t, 'sidecar');
  const restartFile = path.join(dir, 'restart');
  const sidecar = await startSidecar(t, {
    app: appCommand(['--workers', '2', '--restart-file', restartFile]),
  });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  await sidecar.waitForOutput(/^worker (\d+)$/);
  await sidecar.waitForOutput(/^worker (\d+)$/, 2);
  const pending = scrape(sidecar.url('/debug/pprof/profile?seconds=6'));
  await waitForMetrics(
    sidecar,
    (values) => values.get('rbprof_sidecar_recordings') === 1,
  );
  const outputBefore = sidecar.output.length;
  fs.writeFileSync(restartFile, '');
  const replacement = Number(
    (await sidecar.waitForOutput(/^worker (\d+)$/, outputBefore))[1],
  );
  const attached = await sidecar.waitForLog(
    (line) => line.msg === 'subprocess attached' && line.pid === replacement,
  );
  t.is(attached.pid, replacement);
  const profile = await pending;
  t.true(
    (samplesByPid(profile).get(replacement) ?? 0) > 0,
    'samples of the replacement worker',
  );
  t.truthy(sidecar.lines.find((line) => line.msg === 'subprocess exited'));
});

asRoot('rotation keeps a scrape whole', async (t) => {
  const sidecar = await startSidecar(t, {
    app: appCommand(),
    args: ['--rotate', '1'],
  });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const profile = await scrape(sidecar.url('/debug/pprof/profile?seconds=4'));
  const restarts = sidecar.lines.filter(
    (line) => line.msg === 'recording restarted',
  ).length;
  t.true(restarts >= 1, 'the recording was replaced during the scrape');
  t.true(
    countSamples(profile, (sample) => sample.functions.includes(HOT_PATH)) > 0,
  );
  // The application has one thread, so each tick gives at most one sample:
  // a window counts each tick once, give or take the tick at a switch.
  const seconds = profile.durationNanos / 1e9;
  t.true(
    countSamples(profile) <= Math.ceil(99 * seconds) + 1 + restarts,
    `${countSamples(profile)} samples in ${seconds} s`,
  );
});

asRoot("a restarted app's lines are not lost to the log limit", async (t) => {
  const dir = tempDir(t, 'sidecar');
  const sidecar = await startSidecar(t, { app: restartingApp(dir) });
  const first = Number((await sidecar.waitForOutput(/^ready (\d+)$/))[1]);
  // Each scrape starts and ends a recording of the first run, so its
  // lifecycle lines reach the limit of 5 a minute.
  for (let i = 0; i < 5; i += 1) {
    await scrape(sidecar.url('/debug/pprof/profile?seconds=1'));
  }
  const linesBefore = sidecar.lines.length;
  fs.writeFileSync(path.join(dir, 'stop-1'), '');
  await sidecar.waitForLog(
    (line) => line.msg === 'target changed',
    linesBefore,
  );
  await scrape(sidecar.url('/debug/pprof/profile?seconds=1'));
  const started = await sidecar.waitForLog(
    (line) => line.msg === 'recording started' && line.pid !== first,
    linesBefore,
  );
  t.not(started.pid, first);
  t.is(started.suppressed, undefined);
});
