// pprof's profile.proto, gzipped, shaped like the CPU profiles of Go's
// runtime/pprof so that `go tool pprof` and other pprof readers show it as
// a CPU (or wall-clock) profile. Field numbers are those of
// github.com/google/pprof/proto/profile.proto.

import { gzipSync } from 'node:zlib';

import type { Profile } from '../profile/profile';
import type { ThreadSelector } from '../profile/threads';
import type { ThreadState } from '../types';
import { countedStacks } from './collapsed';
import { ProtoWriter } from './protobuf';

/** Options of `Profile.toPprof()`. */
export interface PprofOptions {
  /**
   * Thread states whose samples count; only `running` by default. With
   * `running` alone the time is `cpu`, otherwise `wall`.
   */
  readonly states?: readonly ThreadState[];
  /** Count only the samples of threads whose `Thread#name` or kernel
   * thread id is one of these values. */
  readonly threads?: readonly ThreadSelector[];
}

const PROFILE = {
  sampleType: 1,
  sample: 2,
  mapping: 3,
  location: 4,
  function: 5,
  stringTable: 6,
  timeNanos: 9,
  durationNanos: 10,
  periodType: 11,
  period: 12,
  comment: 13,
};
const VALUE_TYPE = { type: 1, unit: 2 };
const SAMPLE = { locationId: 1, value: 2, label: 3 };
const LABEL = { key: 1, str: 2, num: 3 };
const MAPPING = {
  id: 1,
  filename: 5,
  hasFunctions: 7,
  hasFilenames: 8,
  hasLineNumbers: 9,
};
const LOCATION = { id: 1, mappingId: 2, line: 4 };
const LINE = { functionId: 1, line: 2 };
const FUNCTION = { id: 1, name: 2, filename: 4 };

/**
 * Encodes a profile as an uncompressed profile.proto message.
 *
 * Sample types are `samples/count` and `cpu/nanoseconds`, or
 * `wall/nanoseconds` when states other than `running` count, because time
 * off the CPU is then included. Each thread-sample weighs one sampling
 * period. Without a known rate, only `samples/count` is written.
 *
 * Each (stack, thread, state) of the profile is one pprof sample with the
 * labels `pid`, `thread_id` (the kernel thread id), `thread_name` (when
 * set) and `thread_state`. A location is one (function, line) pair, and
 * functions have no start line because Ruby does not give one per frame.
 */
export function encodePprof(
  profile: Profile,
  options: PprofOptions = {},
): Uint8Array {
  const strings = new StringTable();
  const states = options.states ?? ['running'];
  const timeType = states.every((state) => state === 'running')
    ? 'cpu'
    : 'wall';
  const periodNs =
    profile.rateHz === undefined ? undefined : Math.round(1e9 / profile.rateHz);

  const out = new ProtoWriter();
  const valueType = (type: string, unit: string) =>
    new ProtoWriter()
      .int64(VALUE_TYPE.type, strings.index(type))
      .int64(VALUE_TYPE.unit, strings.index(unit));
  out.message(PROFILE.sampleType, valueType('samples', 'count'));
  if (periodNs !== undefined) {
    out.message(PROFILE.sampleType, valueType(timeType, 'nanoseconds'));
  }

  // Functions and locations get ids from 1 in order of first use.
  const functionIds = new Map<number, number>();
  const functions: ProtoWriter[] = [];
  const locationIds = new Map<string, number>();
  const locations: ProtoWriter[] = [];
  const locationOf = (fn: Profile['functions'][number], line: number) => {
    let functionId = functionIds.get(fn.id);
    if (functionId === undefined) {
      functionId = functions.length + 1;
      functionIds.set(fn.id, functionId);
      functions.push(
        new ProtoWriter()
          .uint64(FUNCTION.id, functionId)
          .int64(FUNCTION.name, strings.index(fn.name))
          .int64(FUNCTION.filename, strings.index(fn.path)),
      );
    }
    const key = `${functionId}:${line}`;
    let locationId = locationIds.get(key);
    if (locationId === undefined) {
      locationId = locations.length + 1;
      locationIds.set(key, locationId);
      const lineMessage = new ProtoWriter()
        .uint64(LINE.functionId, functionId)
        .int64(LINE.line, line);
      locations.push(
        new ProtoWriter()
          .uint64(LOCATION.id, locationId)
          .uint64(LOCATION.mappingId, 1)
          .message(LOCATION.line, lineMessage),
      );
    }
    return locationId;
  };

  for (const stack of countedStacks(profile.stacks(), {
    states,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  })) {
    // pprof lists a sample's locations leaf first.
    const locationIdsOfStack = stack.frames
      .map((frame) => locationOf(frame.function, frame.line))
      .reverse();
    const values =
      periodNs === undefined
        ? [stack.count]
        : [stack.count, BigInt(stack.count) * BigInt(periodNs)];
    const sample = new ProtoWriter()
      .packed(SAMPLE.locationId, locationIdsOfStack)
      .packed(SAMPLE.value, values);
    const { pid, tid, name } = stack.thread;
    sample.message(SAMPLE.label, numberLabel(strings, 'pid', pid));
    sample.message(SAMPLE.label, numberLabel(strings, 'thread_id', tid));
    if (name !== undefined) {
      sample.message(SAMPLE.label, textLabel(strings, 'thread_name', name));
    }
    sample.message(
      SAMPLE.label,
      textLabel(strings, 'thread_state', stack.state),
    );
    out.message(PROFILE.sample, sample);
  }

  // One mapping, the Ruby binary, marks every location as symbolized, so
  // readers do not look for machine code to resolve.
  const { rubyVersion, rubyBinary } = profile.target;
  out.message(
    PROFILE.mapping,
    new ProtoWriter()
      .uint64(MAPPING.id, 1)
      .int64(MAPPING.filename, strings.index(rubyBinary))
      .bool(MAPPING.hasFunctions, true)
      .bool(MAPPING.hasFilenames, true)
      .bool(MAPPING.hasLineNumbers, true),
  );
  for (const location of locations) {
    out.message(PROFILE.location, location);
  }
  for (const fn of functions) {
    out.message(PROFILE.function, fn);
  }

  if (profile.startTimeMs !== undefined) {
    out.int64(PROFILE.timeNanos, BigInt(profile.startTimeMs) * 1_000_000n);
  }
  out.int64(
    PROFILE.durationNanos,
    Math.round(profile.stats.durationSeconds * 1e9),
  );
  if (periodNs === undefined) {
    out.message(PROFILE.periodType, valueType('samples', 'count'));
    out.int64(PROFILE.period, 1);
  } else {
    out.message(PROFILE.periodType, valueType(timeType, 'nanoseconds'));
    out.int64(PROFILE.period, periodNs);
  }
  out.packed(PROFILE.comment, [
    strings.index(`Ruby ${rubyVersion} (${rubyBinary}), sampled by rbprof`),
  ]);

  // The string table comes last because every field above adds to it.
  for (const text of strings.texts) {
    out.repeatedString(PROFILE.stringTable, text);
  }
  return out.finish();
}

/** Encodes a profile as gzipped profile.proto, the file `go tool pprof`
 * reads. */
export function toPprof(profile: Profile, options: PprofOptions = {}): Buffer {
  return gzipSync(encodePprof(profile, options));
}

/** The strings of a profile, each stored once; index 0 is the empty
 * string, as profile.proto requires. */
class StringTable {
  readonly texts: string[] = [''];
  readonly #indexes = new Map<string, number>([['', 0]]);

  index(text: string): number {
    let index = this.#indexes.get(text);
    if (index === undefined) {
      index = this.texts.length;
      this.texts.push(text);
      this.#indexes.set(text, index);
    }
    return index;
  }
}

function numberLabel(
  strings: StringTable,
  key: string,
  value: number,
): ProtoWriter {
  return new ProtoWriter()
    .int64(LABEL.key, strings.index(key))
    .int64(LABEL.num, value);
}

function textLabel(
  strings: StringTable,
  key: string,
  value: string,
): ProtoWriter {
  return new ProtoWriter()
    .int64(LABEL.key, strings.index(key))
    .int64(LABEL.str, strings.index(value));
}
