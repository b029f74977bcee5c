// snapshot() without a target: option checks, the conversion of the
// addon's result and the text format, on a scripted fake of the addon.

import test from 'ava';

import { InvalidArgumentError, InvalidCoreError, snapshot } from 'rbprof';
import { formatSnapshot } from '../dist/formats/snapshot';
import type { NativeBinding, NativeSnapshot } from '../dist/native';
import { takeSnapshot, type SnapshotOptions } from '../dist/snapshot';

const NATIVE_RESULT: NativeSnapshot = {
  pid: 41,
  rubyVersion: '3.1.2',
  threads: [
    {
      tid: 41,
      state: 'blocked',
      frames: [
        { name: '<main>', path: '/app/main.rb', line: 21, kind: 'ruby' },
        { name: 'Kernel#sleep', path: '/app/main.rb', line: 21, kind: 'cfunc' },
      ],
    },
    {
      name: 'worker',
      tid: 0,
      state: 'unknown',
      frames: [],
      error: 'a frame changed while it was read',
    },
  ],
  warnings: ['the layout is unverified'],
};

/** Returns a fake addon that records the options of each call. */
function fakeNative(calls: Array<[string, unknown]>): NativeBinding {
  return {
    snapshot: async (options: unknown) => {
      calls.push(['snapshot', options]);
      return NATIVE_RESULT;
    },
    snapshotCore: async (options: unknown) => {
      calls.push(['snapshotCore', options]);
      return NATIVE_RESULT;
    },
  } as unknown as NativeBinding;
}

test('pid and core options reach the addon', async (t) => {
  const calls: Array<[string, unknown]> = [];
  const native = fakeNative(calls);
  await takeSnapshot(native, { pid: 41 });
  await takeSnapshot(native, { pid: 41, forceVersion: '3.1.0' });
  await takeSnapshot(native, { core: '/tmp/core.41' });
  await takeSnapshot(native, { core: '/tmp/core.41', binary: '/lib/ruby.so' });
  t.deepEqual(calls, [
    ['snapshot', { pid: 41 }],
    ['snapshot', { pid: 41, forceVersion: '3.1.0' }],
    ['snapshotCore', { core: '/tmp/core.41' }],
    ['snapshotCore', { core: '/tmp/core.41', binary: '/lib/ruby.so' }],
  ]);
});

test('invalid options are rejected', async (t) => {
  const calls: Array<[string, unknown]> = [];
  const native = fakeNative(calls);
  const invalid: unknown[] = [
    {},
    { pid: 0 },
    { pid: 1.5 },
    { pid: '41' },
    { pid: 41, core: '/tmp/core.41' },
    { pid: 41, binary: '/lib/ruby.so' },
    { core: '' },
    { core: '/tmp/core.41', binary: 7 },
  ];
  for (const options of invalid) {
    await t.throwsAsync(
      takeSnapshot(native, options as SnapshotOptions),
      { instanceOf: InvalidArgumentError },
      JSON.stringify(options),
    );
  }
  t.deepEqual(calls, []);
});

test('result is plain data', async (t) => {
  const result = await takeSnapshot(fakeNative([]), { pid: 41 });
  t.deepEqual(JSON.parse(JSON.stringify(result)), result);
  t.is(result.pid, 41);
  t.is(result.rubyVersion, '3.1.2');
  t.false('name' in result.threads[0]!);
  t.false('error' in result.threads[0]!);
  t.is(result.threads[1]!.name, 'worker');
  t.is(result.threads[1]!.error, 'a frame changed while it was read');
  t.deepEqual(result.warnings, ['the layout is unverified']);
});

test('text format lists threads and frames', async (t) => {
  const result = await takeSnapshot(fakeNative([]), { pid: 41 });
  t.is(
    formatSnapshot(result),
    [
      'Process 41, Ruby 3.1.2, 2 threads',
      '',
      'Thread <unnamed> (native id 41): blocked',
      '  <main> - /app/main.rb:21',
      '  Kernel#sleep - /app/main.rb:21',
      '',
      'Thread worker (native id unknown): unknown',
      '  (stack not readable: a frame changed while it was read)',
      '',
    ].join('\n'),
  );
});

test('file that is not a core', async (t) => {
  const error = await t.throwsAsync(snapshot({ core: __filename }), {
    instanceOf: InvalidCoreError,
  });
  t.is(error?.code, 'ERR_INVALID_CORE');
  t.true(error?.message.includes(__filename), error?.message);
  t.true(error?.message.includes('not an ELF file'), error?.message);
  t.truthy(error?.hint);
});
