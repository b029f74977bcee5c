// The hand-written index.d.ts and the compiled library must describe the
// same API. The type assertions below fail the test build when they drift.

import test from 'ava';

import * as library from 'rbprof';
import type * as Declared from 'rbprof';
import type * as Implementation from '../dist/index';

type Assert<T extends true> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type NoneLeft<T> = [T] extends [never] ? true : false;

// Every value the library exports is declared, with a compatible type.
export type ValuesMatch = Assert<
  [typeof Implementation] extends [typeof Declared] ? true : false
>;
export type NoUndeclaredValues = Assert<
  NoneLeft<Exclude<keyof typeof Implementation, keyof typeof Declared>>
>;

// Exported types, one by one, since a module's types cannot be listed.
export type TypesMatch = Assert<
  | Same<Declared.ThreadState, Implementation.ThreadState>
  | Same<Declared.FunctionKind, Implementation.FunctionKind>
  | Same<Declared.FunctionInfo, Implementation.FunctionInfo>
  | Same<Declared.ThreadInfo, Implementation.ThreadInfo>
  | Same<Declared.Frame, Implementation.Frame>
  | Same<Declared.Sample, Implementation.Sample>
  | Same<Declared.StackCount, Implementation.StackCount>
  | Same<Declared.SamplerStats, Implementation.SamplerStats>
  | Same<Declared.PauseStats, Implementation.PauseStats>
  | Same<Declared.TargetInfo, Implementation.TargetInfo>
  | Same<Declared.EndReason, Implementation.EndReason>
  | Same<Declared.RecordingEnd, Implementation.RecordingEnd>
  | Same<Declared.SampleBatch, Implementation.SampleBatch>
  | Same<Declared.RecordOptions, Implementation.RecordOptions>
  | Same<Declared.ChildExit, Implementation.ChildExit>
  | Same<Declared.LaunchedProcess, Implementation.LaunchedProcess>
  | Same<Declared.ProfileStats, Implementation.ProfileStats>
  | Same<Declared.ProfileBuilderOptions, Implementation.ProfileBuilderOptions>
  | Same<Declared.BuiltProfileOptions, Implementation.BuiltProfileOptions>
  | Same<Declared.SummaryRow, Implementation.SummaryRow>
  | Same<Declared.RowsOptions, Implementation.RowsOptions>
  | Same<Declared.SampleFilter, Implementation.SampleFilter>
  | Same<Declared.ThreadRows, Implementation.ThreadRows>
  | Same<Declared.ProcessRows, Implementation.ProcessRows>
  | Same<Declared.ProfileFormat, Implementation.ProfileFormat>
  | Same<Declared.FormatInfo, Implementation.FormatInfo>
  | Same<Declared.RenderOptions, Implementation.RenderOptions>
  | Same<Declared.RawRecordingOptions, Implementation.RawRecordingOptions>
  | Same<Declared.SummaryOptions, Implementation.SummaryOptions>
  | Same<Declared.StackFormatOptions, Implementation.StackFormatOptions>
  | Same<Declared.FlamegraphOptions, Implementation.FlamegraphOptions>
  | Same<Declared.PprofOptions, Implementation.PprofOptions>
  | Same<Declared.CallgrindOptions, Implementation.CallgrindOptions>
  | Same<Declared.SpeedscopeFrame, Implementation.SpeedscopeFrame>
  | Same<
      Declared.SpeedscopeSampledProfile,
      Implementation.SpeedscopeSampledProfile
    >
  | Same<Declared.SpeedscopeFile, Implementation.SpeedscopeFile>
  | Same<Declared.ErrorCode, Implementation.ErrorCode>
  | Same<Declared.RbprofErrorOptions, Implementation.RbprofErrorOptions>
  | Same<Declared.VersionRange, Implementation.VersionRange>
  | Same<Declared.SnapshotOptions, Implementation.SnapshotOptions>
  | Same<Declared.ProcessSnapshotOptions, Implementation.ProcessSnapshotOptions>
  | Same<Declared.CoreSnapshotOptions, Implementation.CoreSnapshotOptions>
  | Same<Declared.SnapshotThreadState, Implementation.SnapshotThreadState>
  | Same<Declared.SnapshotFrame, Implementation.SnapshotFrame>
  | Same<Declared.ThreadSnapshot, Implementation.ThreadSnapshot>
  | Same<Declared.Snapshot, Implementation.Snapshot>
  // The two Profile classes differ in their private members.
  | Same<
      Omit<Declared.RawRecording, 'profile'>,
      Omit<Implementation.RawRecording, 'profile'>
    >
  | Same<
      Omit<Declared.RawRecordingWriter, 'finish'>,
      Omit<Implementation.RawRecordingWriter, 'finish'>
    >
  | Same<
      Omit<Declared.Recording, 'done' | 'stop' | 'profile'>,
      Omit<Implementation.Recording, 'done' | 'stop' | 'profile'>
    >
  // The public members of Profile, without the private ones.
  | Same<
      Pick<Declared.Profile, keyof Declared.Profile>,
      Pick<Implementation.Profile, keyof Implementation.Profile>
    >
>;

test('declared values exist at run time', (t) => {
  const values = [
    'record',
    'Profile',
    'ProfileBuilder',
    'formatSummary',
    'supportedVersions',
    'RbprofError',
    'NoSuchProcessError',
    'NotRubyError',
    'UnsupportedVersionError',
    'PermissionDeniedError',
    'ProcessExitedError',
    'InvalidArgumentError',
    'VmUnreadableError',
    'SamplingFailedError',
    'readRecording',
    'FileAccessError',
    'InvalidRecordingError',
    'snapshot',
    'InvalidCoreError',
    'writeRawRecording',
    'formatSnapshot',
    'renderProfile',
    'formatInfo',
    'isProfileFormat',
    'shellStatus',
  ];
  t.deepEqual(
    Object.keys(library).sort(),
    [...values, 'PROFILE_FORMATS'].sort(),
  );
  for (const name of values) {
    t.is(typeof (library as Record<string, unknown>)[name], 'function', name);
  }
  t.deepEqual(library.PROFILE_FORMATS, [
    'summary',
    'summary-by-line',
    'collapsed',
    'flamegraph',
    'speedscope',
    'pprof',
    'callgrind',
  ]);
});

test('error classes carry code and hint', (t) => {
  const error = new library.PermissionDeniedError('denied', {
    hint: 'add SYS_PTRACE',
  });
  t.true(error instanceof library.RbprofError);
  t.true(error instanceof Error);
  t.is(error.code, 'ERR_PERMISSION_DENIED');
  t.is(error.hint, 'add SYS_PTRACE');
  t.is(error.name, 'PermissionDeniedError');
  t.is(error.message, 'denied');
});
