#!/usr/bin/env node
// Records a Ruby process for some seconds and prints the summary table.
//
//   node examples/record-and-summarize.mjs PID [SECONDS]
//
// The table goes to stdout, the sample counts to stderr.

import { RbprofError, record } from 'rbprof';

const [pidText, secondsText = '5'] = process.argv.slice(2);
const pid = Number(pidText);
const seconds = Number(secondsText);
if (!Number.isInteger(pid) || !(seconds > 0)) {
  console.error('usage: record-and-summarize.mjs PID [SECONDS]');
  process.exit(2);
}

try {
  const recording = await record({ pid, durationSeconds: seconds });
  console.error(
    `Recording process ${pid} (Ruby ${recording.target.rubyVersion}) ` +
      `for ${seconds} s at ${recording.rateHz} Hz.`,
  );
  const profile = await recording.done;
  process.stdout.write(profile.toSummary({ top: 20 }));

  const { taken, late, failed } = profile.stats;
  console.error(
    `${profile.countSamples()} thread-samples of running threads, ` +
      `${taken} ticks (${late} late, ${failed} failed), ` +
      `ended by ${profile.end?.reason}.`,
  );
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
