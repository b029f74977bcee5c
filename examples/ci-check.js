#!/usr/bin/env node
// Fails a CI job when one function takes too much of a process's time.
// Records the process, then compares the function's % total (its share of
// the samples of running threads, anywhere on the stack) with a limit.
//
//   node examples/ci-check.js PID FUNCTION MAX_PERCENT [SECONDS]
//
// Exit codes: 0 within the limit, 1 over it, 2 for invalid arguments,
// a process that cannot be profiled or no samples.
'use strict';

const { RbprofError, record } = require('rbprof');

async function main(args) {
  const [pidText, name, maxText, secondsText = '10'] = args;
  const pid = Number(pidText);
  const maxPercent = Number(maxText);
  const seconds = Number(secondsText);
  if (
    !Number.isInteger(pid) ||
    name === undefined ||
    !(maxPercent >= 0) ||
    !(seconds > 0)
  ) {
    console.error('usage: ci-check.js PID FUNCTION MAX_PERCENT [SECONDS]');
    return 2;
  }

  const recording = await record({ pid, durationSeconds: seconds });
  const profile = await recording.done;
  if (profile.countSamples() === 0) {
    console.error(`no samples of running threads in ${seconds} s`);
    return 2;
  }
  const row = profile.rows().find((r) => r.function.name === name);
  const percent = row === undefined ? 0 : row.totalPercent;
  const verdict = percent > maxPercent ? 'over' : 'within';
  console.log(
    `${name}: ${percent.toFixed(2)} % total, ${verdict} the limit of ` +
      `${maxPercent} % (${profile.countSamples()} samples)`,
  );
  return percent > maxPercent ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    // An RbprofError may carry the next step in `hint`, such as the
    // capability to add when permission is denied.
    console.error(`ci-check failed: ${error.message}`);
    if (error instanceof RbprofError && error.hint !== undefined) {
      console.error(error.hint);
    }
    process.exitCode = 2;
  },
);
