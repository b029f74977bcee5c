// Parsers of the records of a raw recording. Each checks every field that
// the reader uses, so a damaged record fails here with a clear reason
// instead of producing a wrong profile.

import { THREAD_STATES } from '../profile/data';
import type { EndReason, FunctionKind, PauseStats, TargetInfo } from '../types';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  type BodyRecord,
  type SampleRecord,
} from './format';

/** A record that is valid JSON but not a valid record. The reader adds
 * the file and the offset to the message. */
export class RecordError extends Error {}

export interface ParsedHeader {
  readonly version: number;
  readonly startTime: Date;
  readonly rateHz: number;
  readonly idle: boolean;
  /** Absent when the header lacks the field. */
  readonly pause?: boolean;
  readonly states: readonly string[];
  readonly target: TargetInfo;
}

const FUNCTION_KINDS: readonly FunctionKind[] = ['ruby', 'cfunc', 'synthetic'];
const END_REASONS: readonly EndReason[] = [
  'stopped',
  'duration',
  'aborted',
  'process_exited',
  'failed',
];

type Fields = Record<string, unknown>;

/** Parses the first line of a raw recording. Throws `RecordError` or
 * `SyntaxError`. */
export function parseHeader(text: string): ParsedHeader {
  const fields = parseObject(text);
  if (fields.format !== FORMAT_NAME) {
    throw new RecordError(`the header's format is not ${FORMAT_NAME}`);
  }
  const version = fields.version;
  if (version !== FORMAT_VERSION) {
    throw new RecordError(
      `the file has format version ${String(version)}, but this rbprof ` +
        `reads only version ${FORMAT_VERSION}, so read it with the rbprof release that wrote it`,
    );
  }
  const startTime = new Date(stringField(fields, 'startTime'));
  if (Number.isNaN(startTime.getTime())) {
    throw new RecordError('startTime is not an ISO 8601 time');
  }
  const states = fields.states;
  if (
    !Array.isArray(states) ||
    !states.every((state) => THREAD_STATES.includes(state))
  ) {
    throw new RecordError(
      `states must list thread states out of ${THREAD_STATES.join(', ')}`,
    );
  }
  const target = objectField(fields, 'target');
  return {
    version,
    startTime,
    rateHz: numberField(fields, 'rateHz'),
    idle: booleanField(fields, 'idle'),
    ...(fields.pause === undefined
      ? {}
      : { pause: booleanField(fields, 'pause') }),
    states,
    target: {
      pid: integerField(target, 'pid'),
      rubyVersion: stringField(target, 'rubyVersion'),
      layoutVersion: stringField(target, 'layoutVersion'),
      layoutVerified: booleanField(target, 'layoutVerified'),
      rubyBinary: stringField(target, 'rubyBinary'),
    },
  };
}

/**
 * Parses a record after the header. `stateCount` is the length of the
 * header's `states`. Throws `RecordError` or `SyntaxError`.
 */
export function parseBodyRecord(text: string, stateCount: number): BodyRecord {
  const fields = parseObject(text);
  const type = fields.type;
  switch (type) {
    case 'function': {
      const kind = stringField(fields, 'kind');
      if (!(FUNCTION_KINDS as readonly string[]).includes(kind)) {
        throw new RecordError(`unknown function kind "${kind}"`);
      }
      return {
        type,
        id: integerField(fields, 'id'),
        name: stringField(fields, 'name'),
        path: stringField(fields, 'path'),
        kind,
      };
    }
    case 'thread': {
      const name = fields.name;
      if (name !== undefined && typeof name !== 'string') {
        throw new RecordError('name must be a string when present');
      }
      return {
        type,
        id: integerField(fields, 'id'),
        pid: integerField(fields, 'pid'),
        tid: integerField(fields, 'tid'),
        ...(name === undefined ? {} : { name }),
      };
    }
    case 'sample':
      return parseSample(fields, stateCount);
    case 'stats':
      return {
        type,
        taken: integerField(fields, 'taken'),
        late: integerField(fields, 'late'),
        failed: integerField(fields, 'failed'),
        threadSamples: integerField(fields, 'threadSamples'),
        ...(fields.pause === undefined
          ? {}
          : { pause: parsePauseStats(objectField(fields, 'pause')) }),
      };
    case 'warning':
      return { type, message: stringField(fields, 'message') };
    case 'limit':
      return { type, maxBytes: integerField(fields, 'maxBytes') };
    case 'end': {
      const reason = stringField(fields, 'reason') as EndReason;
      if (!END_REASONS.includes(reason)) {
        throw new RecordError(`unknown end reason "${reason}"`);
      }
      const message = fields.message;
      if (message !== undefined && typeof message !== 'string') {
        throw new RecordError('message must be a string when present');
      }
      return {
        type,
        reason,
        ...(message === undefined ? {} : { message }),
        durationSeconds: numberField(fields, 'durationSeconds'),
      };
    }
    default:
      throw new RecordError(`unknown record type ${JSON.stringify(type)}`);
  }
}

function parsePauseStats(fields: Fields): PauseStats {
  return {
    count: integerField(fields, 'count'),
    totalNs: numberField(fields, 'totalNs'),
    maxNs: numberField(fields, 'maxNs'),
  };
}

function parseSample(fields: Fields, stateCount: number): SampleRecord {
  const state = integerField(fields, 'state');
  if (state >= stateCount) {
    throw new RecordError(
      `state ${state} is not an index of the header's ${stateCount} states`,
    );
  }
  const frames = fields.frames;
  if (!Array.isArray(frames)) {
    throw new RecordError('frames must be an array');
  }
  for (const frame of frames) {
    if (
      !Array.isArray(frame) ||
      frame.length !== 2 ||
      !isCount(frame[0]) ||
      !isCount(frame[1])
    ) {
      throw new RecordError(
        'each frame must be a [function id, line] pair of integers from 0',
      );
    }
  }
  return {
    type: 'sample',
    time: numberField(fields, 'time'),
    thread: integerField(fields, 'thread'),
    state,
    frames: frames as Array<[number, number]>,
  };
}

function parseObject(text: string): Fields {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RecordError('a record must be a JSON object');
  }
  return value as Fields;
}

function objectField(fields: Fields, name: string): Fields {
  const value = fields[name];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RecordError(`${name} must be an object`);
  }
  return value as Fields;
}

function stringField(fields: Fields, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string') {
    throw new RecordError(`${name} must be a string`);
  }
  return value;
}

function booleanField(fields: Fields, name: string): boolean {
  const value = fields[name];
  if (typeof value !== 'boolean') {
    throw new RecordError(`${name} must be true or false`);
  }
  return value;
}

/** Returns a finite number from 0. */
function numberField(fields: Fields, name: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RecordError(`${name} must be a number from 0`);
  }
  return value;
}

function integerField(fields: Fields, name: string): number {
  const value = fields[name];
  if (!isCount(value)) {
    throw new RecordError(`${name} must be an integer from 0`);
  }
  return value;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
