// The raw recording format: every sample of a recording with its time,
// written as a stream so that a file cut short still reads.
//
// A raw recording is UTF-8 JSON lines. Each record is one JSON object on
// one line that ends with `\n`, so a last line without `\n` is a record
// that was cut short. The first line is the header, and it starts with
// `HEADER_PREFIX` followed by the version, so a reader can tell the format
// from its first bytes. Every other record has a `type`:
//
// ```
// {"format":"rbprof-raw","version":1,"startTime":"2026-12-04T16:05:03.120Z",
//  "rateHz":99,"idle":false,"pause":false,
//  "states":["running","waiting_gvl","blocked"],
//  "target":{"pid":1234,"rubyVersion":"3.1.2",...}}
// {"type":"function","id":3,"name":"Foo#bar","path":"/app/foo.rb","kind":"ruby"}
// {"type":"thread","id":0,"pid":1234,"tid":1240,"name":"worker"}
// {"type":"sample","time":10200300,"thread":0,"state":0,"frames":[[3,12],[5,40]]}
// {"type":"stats","taken":12,"late":0,"failed":0,"threadSamples":12,
//  "pause":{"count":12,"totalNs":960000,"maxNs":210000}}
// {"type":"warning","message":"..."}
// {"type":"limit","maxBytes":536870912}
// {"type":"end","reason":"stopped","durationSeconds":10.02}
// ```
//
// (The header and each stats record are one line in the file.) Functions and threads are defined
// once, before the first sample that uses them. A sample's `time` is in
// nanoseconds since the recording started, `state` indexes the header's
// `states`, and `frames` are `[function id, line]` pairs, outermost first.
// `stats` carries the sampler's totals so far, and its `pause` appears
// once the target was paused. The header's `pause` is true when the
// recording paused the target, and a header may lack it.
// `limit` means the writer
// stopped at its size limit, so later samples are missing, and `end` is
// the last record of a recording that finished.

import type { EndReason, SamplerStats, TargetInfo } from '../types';

export const FORMAT_NAME = 'rbprof-raw';
export const FORMAT_VERSION = 1;
/** The first bytes of every raw recording, of any version. */
export const HEADER_PREFIX = `{"format":"${FORMAT_NAME}","version":`;

export interface HeaderRecord {
  readonly format: typeof FORMAT_NAME;
  readonly version: number;
  /** When sampling started, as an ISO 8601 UTC time. */
  readonly startTime: string;
  readonly rateHz: number;
  /** Whether threads that were not on a CPU were sampled too. */
  readonly idle: boolean;
  /** Whether the target's threads were stopped for each read. */
  readonly pause?: boolean;
  /** The thread states that samples' `state` indexes. */
  readonly states: readonly string[];
  readonly target: TargetInfo;
}

export interface FunctionRecord {
  readonly type: 'function';
  readonly id: number;
  readonly name: string;
  readonly path: string;
  readonly kind: string;
}

export interface ThreadRecord {
  readonly type: 'thread';
  readonly id: number;
  readonly pid: number;
  readonly tid: number;
  readonly name?: string;
}

export interface SampleRecord {
  readonly type: 'sample';
  /** Nanoseconds since the recording started. */
  readonly time: number;
  readonly thread: number;
  /** An index into the header's `states`. */
  readonly state: number;
  /** `[function id, line]` pairs, outermost first. */
  readonly frames: ReadonlyArray<readonly [number, number]>;
}

export interface StatsRecord extends SamplerStats {
  readonly type: 'stats';
}

export interface WarningRecord {
  readonly type: 'warning';
  readonly message: string;
}

export interface LimitRecord {
  readonly type: 'limit';
  /** The size limit of the file that was reached. */
  readonly maxBytes: number;
}

export interface EndRecord {
  readonly type: 'end';
  readonly reason: EndReason;
  readonly message?: string;
  /** Wall-clock seconds from the start of sampling to the end. */
  readonly durationSeconds: number;
}

export type BodyRecord =
  | FunctionRecord
  | ThreadRecord
  | SampleRecord
  | StatsRecord
  | WarningRecord
  | LimitRecord
  | EndRecord;
