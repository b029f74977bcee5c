// record() against a scripted stand-in for the addon, to pin down the
// order of batches and how a recording ends without a live target.

import test from 'ava';

import {
  NotRubyError,
  RbprofError,
  SamplingFailedError,
  InvalidArgumentError,
  type RecordOptions,
} from 'rbprof';
import type { NativeBinding } from '../dist/native';
import { startRecording } from '../dist/record';
import { makeBatch, type BatchSpec } from './helpers/batches';

type RawBatch = ReturnType<typeof makeBatch>;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

/** Creates a promise to settle by hand; settling it again has no effect. */
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

class FakeSampler {
  readonly target = {
    pid: 42,
    rubyVersion: '3.1.2',
    layoutVersion: '3.1.0',
    layoutVerified: true,
    rubyBinary: '/usr/bin/ruby',
  };
  readonly calls: Array<Deferred<RawBatch | null>> = [];
  stopCalls = 0;
  stopBatch: RawBatch = makeBatch({ end: { reason: 'stopped' } });

  nextBatch(): Promise<RawBatch | null> {
    const call = deferred<RawBatch | null>();
    this.calls.push(call);
    return call.promise;
  }

  stop(): RawBatch {
    this.stopCalls++;
    // Like the core, a call waiting for samples returns once the sampler
    // stopped. A test may resolve it with a batch before that.
    setImmediate(() => {
      for (const call of this.calls) {
        call.resolve(null);
      }
    });
    const batch = this.stopBatch;
    // Like the core, later calls return no samples and the same end.
    this.stopBatch = makeBatch({ end: batch.end, stats: batch.stats });
    return batch;
  }
}

interface Fake {
  sampler: FakeSampler;
  binding: NativeBinding;
  startOptions: unknown[];
}

function fake(startError?: unknown): Fake {
  const sampler = new FakeSampler();
  const startOptions: unknown[] = [];
  const binding = {
    NativeSampler: {
      start: async (options: unknown) => {
        startOptions.push(options);
        if (startError !== undefined) {
          throw startError;
        }
        return sampler;
      },
    },
    threadStateNames: () => ['running', 'waiting_gvl', 'blocked'],
  } as unknown as NativeBinding;
  return { sampler, binding, startOptions };
}

/** Waits until the recording has asked the sampler for batch `count`. */
async function callsMade(sampler: FakeSampler, count: number): Promise<void> {
  while (sampler.calls.length < count) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const WORK: BatchSpec = {
  functions: [
    [0, '<main>'],
    [1, 'Object#work'],
  ],
  threads: [[0, 'worker']],
  samples: [{ stack: [0, 1] }],
};

function record(f: Fake, options: Partial<RecordOptions> = {}) {
  return startRecording(f.binding, { pid: 42, ...options });
}

test('start passes the options on', async (t) => {
  const f = fake();
  const recording = await record(f, {
    rateHz: 250,
    idle: true,
    forceVersion: '3.1.2',
  });
  t.deepEqual(f.startOptions, [
    { pid: 42, rateHz: 250, idle: true, forceVersion: '3.1.2' },
  ]);
  t.is(recording.target.rubyVersion, '3.1.2');
  await recording.stop();
});

test('start uses 99 Hz by default', async (t) => {
  const f = fake();
  const recording = await record(f);
  t.deepEqual(f.startOptions, [{ pid: 42, rateHz: 99, idle: false }]);
  await recording.stop();
});

test('stop keeps a batch in flight first', async (t) => {
  const f = fake();
  const recording = await record(f);
  await callsMade(f.sampler, 1);

  // The stop batch refers to a function that only the batch still in
  // flight defines, so adding them out of order would lose its name.
  f.sampler.stopBatch = makeBatch({
    samples: [{ stack: [0, 1] }, { stack: [0, 1] }],
    end: { reason: 'stopped' },
  });
  const stopped = recording.stop();
  f.sampler.calls[0].resolve(makeBatch(WORK));
  const profile = await stopped;

  const work = profile.rows().find((row) => row.function.id === 1);
  t.is(work?.function.name, 'Object#work');
  t.is(work?.selfSamples, 3);
  t.is(profile.end?.reason, 'stopped');
  t.is(f.sampler.calls.length, 1);
});

test('stop while no call is in flight', async (t) => {
  const f = fake();
  const recording = await record(f);
  await callsMade(f.sampler, 1);
  f.sampler.calls[0].resolve(makeBatch(WORK));
  // The recording now pauses between calls; stop() must end the pause.
  await new Promise((resolve) => setImmediate(resolve));
  f.sampler.stopBatch = makeBatch({
    samples: [{ stack: [0, 1] }],
    end: { reason: 'stopped' },
  });
  const profile = await recording.stop();
  t.is(profile.sampleCount, 2);
  t.is(profile.end?.reason, 'stopped');
});

test('process exit ends the recording', async (t) => {
  const f = fake();
  const recording = await record(f);
  await callsMade(f.sampler, 1);
  f.sampler.calls[0].resolve(
    makeBatch({ ...WORK, end: { reason: 'process_exited' } }),
  );
  const profile = await recording.done;
  t.is(profile.end?.reason, 'process_exited');
  t.is(profile.sampleCount, 1);
  // The sampler thread is joined even though the sampler ended on its own.
  t.is(f.sampler.stopCalls, 1);
  t.is(await recording.stop(), profile);
  t.is(f.sampler.stopCalls, 1);
});

test('duration ends the recording', async (t) => {
  const f = fake();
  const recording = await record(f, { durationSeconds: 0.05 });
  const profile = await recording.done;
  t.is(profile.end?.reason, 'duration');
  t.is(f.sampler.stopCalls, 1);
});

test('abort signal ends the recording', async (t) => {
  const f = fake();
  const controller = new AbortController();
  const recording = await record(f, { signal: controller.signal });
  controller.abort();
  const profile = await recording.done;
  t.is(profile.end?.reason, 'aborted');
});

test('aborted signal stops at once', async (t) => {
  const f = fake();
  const recording = await record(f, { signal: AbortSignal.abort() });
  const profile = await recording.done;
  t.is(profile.end?.reason, 'aborted');
  t.is(f.sampler.stopCalls, 1);
});

test('failed sampling rejects with the profile', async (t) => {
  const f = fake();
  const recording = await record(f);
  await callsMade(f.sampler, 1);
  f.sampler.calls[0].resolve(
    makeBatch({ ...WORK, end: { reason: 'failed', message: 'VM gone' } }),
  );
  const error = await t.throwsAsync(recording.done, {
    instanceOf: SamplingFailedError,
  });
  t.is(error?.code, 'ERR_SAMPLING_FAILED');
  t.true(error?.message.includes('VM gone'));
  t.is(error?.profile.sampleCount, 1);
  t.is(error?.profile.end?.reason, 'failed');
});

test('samples yield decoded batches until the end', async (t) => {
  const f = fake();
  const recording = await record(f);
  const iterator = recording.samples();
  await callsMade(f.sampler, 1);
  f.sampler.calls[0].resolve(makeBatch(WORK));
  await callsMade(f.sampler, 2);
  f.sampler.calls[1].resolve(
    makeBatch({
      functions: [],
      threads: [],
      samples: [
        { stack: [0, 1], timeNs: 5_000_000 },
        { stack: [0, 1], timeNs: 15_000_000 },
      ],
      end: { reason: 'process_exited' },
    }),
  );

  const batches = [];
  for await (const batch of iterator) {
    batches.push(batch);
  }
  // Two batches from nextBatch() and the empty one from the final stop().
  t.is(batches.length, 3);
  t.is(batches[0].samples[0].thread.name, 'worker');
  t.deepEqual(
    batches[1].samples[0].frames.map((frame) => frame.function.name),
    ['<main>', 'Object#work'],
  );
  // Every sample keeps its own time, even two of the same stack.
  t.deepEqual(
    batches[1].samples.map((sample) => sample.timeNs),
    [5_000_000, 15_000_000],
  );
  t.is(batches[1].samples[1].thread.name, 'worker');
  t.is(batches[2].samples.length, 0);
  const profile = await recording.done;
  t.is(profile.sampleCount, 3);
  t.deepEqual(
    [...profile.stacks()].map((stack) => stack.count),
    [3],
  );
});

test('samples after the end yield nothing', async (t) => {
  const f = fake();
  const recording = await record(f);
  await recording.stop();
  const batches = [];
  for await (const batch of recording.samples()) {
    batches.push(batch);
  }
  t.is(batches.length, 0);
});

test('profile while recording is a snapshot', async (t) => {
  const f = fake();
  const recording = await record(f);
  await callsMade(f.sampler, 1);
  f.sampler.calls[0].resolve(makeBatch(WORK));
  await callsMade(f.sampler, 2);
  const early = recording.profile();
  t.is(early.end, undefined);
  t.is(early.sampleCount, 1);
  const rowsBefore = early.rows();
  // The same stack again changes a count that the early profile also
  // read, and a new stack adds an entry.
  f.sampler.calls[1].resolve(
    makeBatch({ samples: [{ stack: [0, 1] }, { stack: [0] }] }),
  );
  await callsMade(f.sampler, 3);
  const middle = recording.profile();
  f.sampler.stopBatch = makeBatch({
    samples: [{ stack: [0, 1] }],
    end: { reason: 'stopped' },
  });
  const final = await recording.stop();

  t.is(early.sampleCount, 1);
  t.deepEqual(early.rows(), rowsBefore);
  t.deepEqual(
    [...early.stacks()].map((stack) => stack.count),
    [1],
  );
  t.is(middle.sampleCount, 3);
  t.deepEqual(
    [...middle.stacks()].map((stack) => stack.count),
    [2, 1],
  );
  t.is(final.sampleCount, 4);
  t.deepEqual(
    [...final.stacks()].map((stack) => stack.count),
    [3, 1],
  );
  t.is(final.rows().find((row) => row.function.id === 1)?.selfSamples, 3);
});

test('start errors become typed errors', async (t) => {
  const native = Object.assign(new Error('process 42 is not a Ruby process'), {
    code: 'ERR_NOT_RUBY',
    hint: 'Point --pid at the ruby process itself.',
  });
  const error = await t.throwsAsync(record(fake(native)), {
    instanceOf: NotRubyError,
  });
  t.is(error?.code, 'ERR_NOT_RUBY');
  t.is(error?.hint, 'Point --pid at the ruby process itself.');
  t.is(error?.message, 'process 42 is not a Ruby process');
});

test('unknown error codes keep their code', async (t) => {
  const native = Object.assign(new Error('disk on fire'), {
    code: 'ERR_SOMETHING_NEW',
  });
  const error = await t.throwsAsync(record(fake(native)), {
    instanceOf: RbprofError,
  });
  t.is(error?.code, 'ERR_SOMETHING_NEW');
  t.is(error?.hint, undefined);
});

test('errors without a code pass through', async (t) => {
  const native = new TypeError('not an rbprof error');
  const error = await t.throwsAsync(record(fake(native)));
  t.is(error, native);
});

test('invalid options reject before start', async (t) => {
  const cases: Array<Partial<RecordOptions>> = [
    { pid: 0 },
    { pid: -5 },
    { pid: 1.5 },
    { rateHz: 0 },
    { rateHz: Number.NaN },
    { durationSeconds: -1 },
    { durationSeconds: Number.POSITIVE_INFINITY },
  ];
  for (const options of cases) {
    const f = fake();
    await t.throwsAsync(
      record(f, options),
      { instanceOf: InvalidArgumentError },
      JSON.stringify(options),
    );
    t.is(f.startOptions.length, 0);
  }
});
