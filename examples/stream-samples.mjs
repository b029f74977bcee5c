#!/usr/bin/env node
// Prints every sample of a Ruby process as it arrives: its time since the
// start, its thread and the function running at the top of its stack.
//
//   node examples/stream-samples.mjs PID [SECONDS]

import { record } from 'rbprof';

const [pidText, secondsText = '5'] = process.argv.slice(2);
const pid = Number(pidText);
const seconds = Number(secondsText);
if (!Number.isInteger(pid) || !(seconds > 0)) {
  console.error('usage: stream-samples.mjs PID [SECONDS]');
  process.exit(2);
}

const recording = await record({ pid, durationSeconds: seconds });
// A reader that stops early, as `| head` does, closes the pipe: stop
// recording then instead of failing on the next write.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') {
    recording.stop();
  } else {
    throw error;
  }
});
// The loop ends when the recording does: here, after `seconds`.
for await (const batch of recording.samples()) {
  for (const sample of batch.samples) {
    const milliseconds = (sample.timeNs / 1e6).toFixed(1);
    const thread = sample.thread.name ?? `tid ${sample.thread.tid}`;
    const leaf = sample.frames.at(-1);
    console.log(
      `${milliseconds.padStart(9)} ms  ${thread}  ${describeFrame(leaf)}`,
    );
  }
  for (const warning of batch.warnings) {
    console.error(`warning: ${warning}`);
  }
}
const profile = await recording.done;
console.error(
  `${profile.sampleCount} samples, ended by ${profile.end?.reason}`,
);

/** Returns `name - path:line`, or the name alone for a frame without a
 * path, such as `(garbage collection)`. */
function describeFrame(frame) {
  if (frame === undefined) {
    return '(no frames)';
  }
  const { name, path } = frame.function;
  return path === '' ? name : `${name} - ${path}:${frame.line}`;
}
