#!/usr/bin/env node
// Profiles a preforking server (puma, unicorn) with its workers for some
// seconds and prints each process's hottest functions.
//
//   node examples/workers.mjs MASTER_PID [SECONDS]
//
// Workers forked during the recording are included.

import { RbprofError, record } from 'rbprof';

const [pidText, secondsText = '5'] = process.argv.slice(2);
const pid = Number(pidText);
const seconds = Number(secondsText);
if (!Number.isInteger(pid) || !(seconds > 0)) {
  console.error('usage: workers.mjs MASTER_PID [SECONDS]');
  process.exit(2);
}

try {
  const recording = await record({
    pid,
    subprocesses: true,
    durationSeconds: seconds,
  });
  const profile = await recording.done;
  for (const info of recording.processes()) {
    const view = profile.byProcess({ pid: info.pid })[0];
    const role =
      info.parentPid === 0 ? 'master' : `worker of ${info.parentPid}`;
    const samples = view?.sampleCount ?? 0;
    console.log(`${info.pid} (${role}): ${samples} samples on a CPU`);
    for (const row of (view?.rows ?? []).slice(0, 3)) {
      console.log(
        `  ${row.selfPercent.toFixed(1).padStart(5)}% self  ${row.function.name}`,
      );
    }
  }
} catch (error) {
  if (!(error instanceof RbprofError)) {
    throw error;
  }
  console.error(`${error.code}: ${error.message}`);
  if (error.hint !== undefined) {
    console.error(error.hint);
  }
  process.exitCode = 2;
}
