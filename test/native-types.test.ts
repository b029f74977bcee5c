// The hand-written types of the addon in src/native.ts must match the
// declarations that `napi build` generates from the Rust binding
// (crates/rbprof-node/index.d.ts). The type assertions below fail the
// test build when one side changes without the other.

import test from 'ava';

import type * as Generated from '../crates/rbprof-node/index';
import { loadNative, type NativeBinding } from '../dist/native';
import type * as Native from '../dist/native';

type Assert<T extends true> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// Every object type that crosses the boundary, in both directions.
export type ObjectsMatch = Assert<
  | Same<Native.StartOptions, Generated.StartOptions>
  | Same<Native.NativeTarget, Generated.NativeTarget>
  | Same<Native.NativeFunction, Generated.NativeFunction>
  | Same<Native.NativeThread, Generated.NativeThread>
  | Same<Native.NativeStats, Generated.NativeStats>
  | Same<Native.NativePauseStats, Generated.NativePauseStats>
  | Same<Native.NativeEnd, Generated.NativeEnd>
  | Same<Native.NativeBatch, Generated.NativeBatch>
  | Same<Native.NativeSampler, Generated.NativeSampler>
  | Same<Native.NativeExit, Generated.NativeExit>
  | Same<Native.NativeChild, Generated.NativeChild>
  | Same<Native.NativeVersionRange, Generated.NativeVersionRange>
  | Same<Native.ProcessSnapshotOptions, Generated.ProcessSnapshotOptions>
  | Same<Native.CoreSnapshotOptions, Generated.CoreSnapshotOptions>
  | Same<Native.NativeSnapshotFrame, Generated.NativeSnapshotFrame>
  | Same<Native.NativeThreadSnapshot, Generated.NativeThreadSnapshot>
  | Same<Native.NativeSnapshot, Generated.NativeSnapshot>
>;

/** The generated module without the loader's report of what it loaded. */
type GeneratedBinding = Omit<typeof Generated, '__napiBindingTarget'>;

// The same functions on both sides, with the same signatures.
export type NamesMatch = Assert<
  Same<keyof GeneratedBinding, keyof NativeBinding>
>;
export type FunctionsMatch = Assert<
  | Same<
      GeneratedBinding['NativeSampler']['start'],
      NativeBinding['NativeSampler']['start']
    >
  | Same<
      GeneratedBinding['NativeChild']['launch'],
      NativeBinding['NativeChild']['launch']
    >
  | Same<
      GeneratedBinding['threadStateNames'],
      NativeBinding['threadStateNames']
    >
  | Same<
      GeneratedBinding['supportedVersions'],
      NativeBinding['supportedVersions']
    >
  | Same<GeneratedBinding['snapshot'], NativeBinding['snapshot']>
  | Same<GeneratedBinding['snapshotCore'], NativeBinding['snapshotCore']>
  | Same<
      GeneratedBinding['renderFlamegraph'],
      NativeBinding['renderFlamegraph']
    >
>;

/** The names of `NativeBinding`, listed for the check at run time. */
const BINDING_NAMES = [
  'NativeSampler',
  'NativeChild',
  'threadStateNames',
  'supportedVersions',
  'snapshot',
  'snapshotCore',
  'renderFlamegraph',
] as const;

export type NamesListed = Assert<
  Same<(typeof BINDING_NAMES)[number], keyof NativeBinding>
>;

test('loaded addon has every function', (t) => {
  const native = loadNative() as unknown as Record<string, unknown>;
  for (const name of BINDING_NAMES) {
    t.is(typeof native[name], 'function', name);
  }
  t.is(typeof loadNative().NativeSampler.start, 'function');
  t.is(typeof loadNative().NativeChild.launch, 'function');
});
