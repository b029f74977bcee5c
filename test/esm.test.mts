// The package loads from ESM with a named import of every export, and
// from CommonJS with the same exports.

import { createRequire } from 'node:module';

import test from 'ava';

import * as namespace from 'rbprof';
import {
  FileAccessError,
  formatInfo,
  formatSnapshot,
  formatSummary,
  InvalidArgumentError,
  InvalidCoreError,
  InvalidRecordingError,
  isProfileFormat,
  NoSuchProcessError,
  NotRubyError,
  PermissionDeniedError,
  ProcessExitedError,
  Profile,
  ProfileBuilder,
  PROFILE_FORMATS,
  RbprofError,
  readRecording,
  record,
  renderProfile,
  SamplingFailedError,
  shellStatus,
  snapshot,
  supportedVersions,
  UnsupportedVersionError,
  VmUnreadableError,
  writeRawRecording,
} from 'rbprof';

const NAMED: Record<string, unknown> = {
  FileAccessError,
  formatInfo,
  formatSnapshot,
  formatSummary,
  InvalidArgumentError,
  InvalidCoreError,
  InvalidRecordingError,
  isProfileFormat,
  NoSuchProcessError,
  NotRubyError,
  PermissionDeniedError,
  ProcessExitedError,
  Profile,
  ProfileBuilder,
  PROFILE_FORMATS,
  RbprofError,
  readRecording,
  record,
  renderProfile,
  SamplingFailedError,
  shellStatus,
  snapshot,
  supportedVersions,
  UnsupportedVersionError,
  VmUnreadableError,
  writeRawRecording,
};

/** The CommonJS exports object, which ESM sees as the default export. */
const moduleExports = (namespace as unknown as { default: object }).default;

test('named imports cover every export', (t) => {
  t.deepEqual(Object.keys(NAMED).sort(), Object.keys(moduleExports).sort());
  for (const [name, value] of Object.entries(NAMED)) {
    t.not(value, undefined, name);
    t.is(value, (moduleExports as Record<string, unknown>)[name], name);
  }
});

test('named imports work from ESM', (t) => {
  t.is(typeof record, 'function');
  t.is(formatSummary([]), '% self  % total  name\n');
  t.true(isProfileFormat('pprof'));
  t.is(PROFILE_FORMATS[0], 'summary');
  t.true(new NotRubyError('no VM') instanceof RbprofError);
});

test('require gives the same exports', (t) => {
  const required = createRequire(import.meta.url)('rbprof') as Record<
    string,
    unknown
  >;
  t.deepEqual(Object.keys(required).sort(), Object.keys(NAMED).sort());
  for (const [name, value] of Object.entries(NAMED)) {
    t.is(required[name], value, name);
  }
});
