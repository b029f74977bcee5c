// The library API against real Ruby processes.

import test from 'ava';

import { record, type Sample } from 'rbprof';
import { startWorkload } from './helpers/processes';

test.serial('threads carry their names', async (t) => {
  const workload = await startWorkload(t, 'threads.rb');
  const recording = await record({ pid: workload.pid, durationSeconds: 2 });
  const samples: Sample[] = [];
  for await (const batch of recording.samples()) {
    samples.push(...batch.samples);
  }
  const profile = await recording.done;
  t.is(profile.end?.reason, 'duration');

  const names = new Set(samples.map((sample) => sample.thread.name));
  t.true(names.has('left'), [...names].join(', '));
  t.true(names.has('right'), [...names].join(', '));

  const leaves = (thread: string) =>
    samples
      .filter((sample) => sample.thread.name === thread)
      .flatMap((sample) => sample.frames.map((frame) => frame.function.name));
  t.true(leaves('left').includes('Object#burn_left'));
  t.true(leaves('right').includes('Object#burn_right'));
  t.false(leaves('left').includes('Object#burn_right'));

  // The profile keeps the same samples and threads as the stream.
  t.is(profile.sampleCount, samples.length);
  const threadNames = profile.threads.map((thread) => thread.name);
  t.true(threadNames.includes('left'));
  t.true(threadNames.includes('right'));
});

test.serial('deep stack is read whole', async (t) => {
  const workload = await startWorkload(t, 'deep.rb');
  const recording = await record({ pid: workload.pid, durationSeconds: 1.5 });
  const profile = await recording.done;
  t.is(profile.end?.reason, 'duration');
  t.is(profile.stats.failed, 0, profile.warnings.join('\n'));
  t.true(profile.sampleCount > 0);

  let deepest = 0;
  let counted = 0;
  for (const stack of profile.stacks()) {
    deepest = Math.max(deepest, stack.frames.length);
    counted += stack.count;
  }
  t.is(counted, profile.sampleCount);
  t.true(deepest > 3000, `deepest stack: ${deepest} frames`);

  const down = profile
    .rows()
    .find((row) => row.function.name === 'Object#down');
  t.is(down?.totalPercent, 100);
  t.true((down?.totalSamples ?? 0) <= profile.sampleCount);
});

test.serial('stop returns the profile so far', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const recording = await record({ pid: workload.pid });
  for await (const batch of recording.samples()) {
    if (batch.samples.length > 0) {
      break;
    }
  }
  const profile = await recording.stop();
  t.is(profile.end?.reason, 'stopped');
  t.true(profile.sampleCount > 0);
  t.is(profile.target.pid, workload.pid);
  t.is(profile.target.rubyVersion, '3.1.2');
  t.is(await recording.done, profile);
});
