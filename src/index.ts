// The library API: what `require('rbprof')` and `import 'rbprof'` give.

export { record } from './record';
export type { RecordOptions, Recording } from './record';
export { shellStatus } from './launch';
export type { ChildExit, LaunchedProcess } from './launch';
export { Profile } from './profile/profile';
export type { ProfileStats } from './profile/profile';
export { ProfileBuilder } from './profile/builder';
export type {
  BuiltProfileOptions,
  ProfileBuilderOptions,
} from './profile/builder';
export type {
  ProcessRows,
  RowsOptions,
  SampleFilter,
  SummaryRow,
  ThreadRows,
} from './profile/rows';
export type { ThreadSelector } from './profile/threads';
export { readRecording } from './recording/reader';
export type { RawRecording } from './recording/reader';
export { writeRawRecording } from './recording/writer';
export type {
  RawRecordingOptions,
  RawRecordingWriter,
} from './recording/writer';
export { supportedVersions } from './versions';
export type { VersionRange } from './versions';
export { snapshot } from './snapshot';
export type {
  CoreSnapshotOptions,
  ProcessSnapshotOptions,
  Snapshot,
  SnapshotFrame,
  SnapshotOptions,
  SnapshotThreadState,
  ThreadSnapshot,
} from './snapshot';
export { formatSummary } from './formats/summary';
export type { SummaryOptions } from './formats/summary';
export { formatSnapshot } from './formats/snapshot';
export {
  formatInfo,
  isProfileFormat,
  PROFILE_FORMATS,
  renderProfile,
} from './formats/index';
export type { FormatInfo, ProfileFormat, RenderOptions } from './formats/index';
export type { StackFormatOptions } from './formats/collapsed';
export type { FlamegraphOptions } from './formats/flamegraph';
export type {
  SpeedscopeFile,
  SpeedscopeFrame,
  SpeedscopeSampledProfile,
} from './formats/speedscope';
export type { PprofOptions } from './formats/pprof';
export type { CallgrindOptions } from './formats/callgrind';
export {
  FileAccessError,
  InvalidArgumentError,
  InvalidCoreError,
  InvalidRecordingError,
  NoSuchProcessError,
  NotRubyError,
  PermissionDeniedError,
  ProcessExitedError,
  RbprofError,
  SamplingFailedError,
  UnsupportedVersionError,
  VmUnreadableError,
} from './errors';
export type { ErrorCode, RbprofErrorOptions } from './errors';
export type {
  EndReason,
  Frame,
  FunctionInfo,
  FunctionKind,
  PauseStats,
  ProcessEvent,
  ProcessInfo,
  RecordingEnd,
  Sample,
  SampleBatch,
  SamplerStats,
  StackCount,
  TargetInfo,
  ThreadInfo,
  ThreadState,
} from './types';
