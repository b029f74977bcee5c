import fs from 'node:fs/promises';

import { FileAccessError, InvalidRecordingError } from '../errors';
import { ProfileData, stateCodesFromNames } from '../profile/data';
import { Profile } from '../profile/profile';
import type { RecordingEnd, TargetInfo } from '../types';
import { HEADER_PREFIX } from './format';
import { BatchBuilder } from './batches';
import {
  parseBodyRecord,
  parseHeader,
  RecordError,
  type ParsedHeader,
} from './records';

/** The profile of a raw recording and the problems found in the file. */
export interface RawRecording {
  readonly path: string;
  /** The samples of every intact record. */
  readonly profile: Profile;
  /** When sampling started; absent when the header is cut short. */
  readonly startTime?: Date;
  /** Samples per second that were requested; absent when the header is
   * cut short. */
  readonly rateHz?: number;
  /** True when the recording stopped the target's threads for each read;
   * absent when the header is cut short or lacks the field. */
  readonly pause?: boolean;
  /** Problems of the file such as a cut-short end, one sentence each.
   * The sampler's own warnings are in `profile.warnings`. */
  readonly warnings: readonly string[];
  /** Bytes at the end of the file that were not a whole record. */
  readonly droppedBytes: number;
  /** Records dropped: 1 when the file ends inside a record, else 0. */
  readonly droppedRecords: number;
  /** True when the file ends with the record that a finished recording
   * writes last. */
  readonly complete: boolean;
}

/** The bytes read per call. */
const CHUNK_BYTES = 1 << 20;
/** A longer line is not a record that rbprof writes: a sample of 10 000
 * frames takes roughly 120 KB, estimated at 12 bytes per frame. */
const MAX_RECORD_BYTES = 64 << 20;

const UNKNOWN_TARGET: TargetInfo = {
  pid: 0,
  rubyVersion: 'unknown',
  layoutVersion: 'unknown',
  layoutVerified: false,
  rubyBinary: 'unknown',
};

/**
 * Reads a raw recording that `rbprof record` wrote and returns its
 * profile. A file cut short at any byte still reads: every whole record
 * is used, and `warnings` lists what was dropped. Rejects with an
 * `InvalidRecordingError` that names the file and the byte offset when
 * the file is not a raw recording or a whole record in it is invalid,
 * and with a `FileAccessError` when it cannot be read.
 */
export async function readRecording(path: string): Promise<RawRecording> {
  let file: fs.FileHandle;
  try {
    file = await fs.open(path, 'r');
  } catch (error) {
    throw new FileAccessError(
      `cannot read the recording ${path}: ${(error as Error).message}`,
      path,
      { cause: error },
    );
  }
  if ((await file.stat()).isDirectory()) {
    await file.close();
    throw new FileAccessError(
      `cannot read the recording ${path}: it is a folder, not a raw recording`,
      path,
      {
        hint:
          'Pass the .raw.jsonl file that `rbprof record` wrote; it prints ' +
          'the path when the recording ends.',
      },
    );
  }
  try {
    const reader = new RecordingReader(path);
    const buffer = Buffer.alloc(CHUNK_BYTES);
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await file.read(buffer, 0, CHUNK_BYTES, null));
      } catch (error) {
        throw new FileAccessError(
          `reading the recording ${path} failed at byte ${reader.offset}: ` +
            (error as Error).message,
          path,
          { cause: error },
        );
      }
      if (bytesRead === 0) {
        break;
      }
      reader.push(buffer.subarray(0, bytesRead));
    }
    return reader.finish();
  } finally {
    await file.close();
  }
}

/**
 * Splits the bytes of a raw recording into lines and adds each record to
 * a profile. Only the current incomplete line is buffered.
 */
class RecordingReader {
  readonly #path: string;
  /** Bytes after the last newline. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The file offset of the first pending byte. */
  #lineStart = 0;
  #header?: ParsedHeader;
  #batches?: BatchBuilder;
  #end?: RecordingEnd & { durationSeconds: number };
  #limitBytes?: number;
  #lastTimeNs = 0;

  constructor(path: string) {
    this.#path = path;
  }

  /** The offset of the next byte to read. */
  get offset(): number {
    return this.#lineStart + this.#pendingBytes;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) {
        this.#keep(chunk.subarray(start));
        return;
      }
      this.#keep(chunk.subarray(start, newline));
      const line = Buffer.concat(this.#pending, this.#pendingBytes);
      const lineStart = this.#lineStart;
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#lineStart = lineStart + line.length + 1;
      this.#handleLine(line, lineStart);
      start = newline + 1;
    }
  }

  finish(): RawRecording {
    const warnings: string[] = [];
    const droppedBytes = this.#pendingBytes;
    if (this.#header === undefined) {
      return this.#finishWithoutHeader(droppedBytes);
    }
    if (droppedBytes > 0) {
      warnings.push(
        `${this.#path} is cut short: dropped the incomplete last record ` +
          `(${droppedBytes} bytes from byte ${this.#lineStart})`,
      );
    }

    const header = this.#header;
    const batches = this.#batches!;
    batches.flush();
    const seconds = this.#lastTimeNs / 1e9;
    if (this.#limitBytes !== undefined) {
      warnings.push(
        `${this.#path} stopped at its size limit of ${this.#limitBytes} bytes, ` +
          `so it lacks the samples after ${seconds.toFixed(1)} s`,
      );
    } else if (this.#end === undefined) {
      warnings.push(
        `${this.#path} has no end record because rbprof stopped before it ` +
          'finished the file (killed or crashed), so the profile covers only ' +
          `the samples of the first ${seconds.toFixed(1)} s`,
      );
    }

    const profile = new Profile({
      target: header.target,
      data: batches.data,
      stats: batches.data.stats,
      durationSeconds: this.#end?.durationSeconds ?? seconds,
      rateHz: header.rateHz,
      startTimeMs: header.startTime.getTime(),
      ...(this.#end === undefined ? {} : { end: toEnd(this.#end) }),
    });
    return {
      path: this.#path,
      profile,
      startTime: header.startTime,
      rateHz: header.rateHz,
      ...(header.pause === undefined ? {} : { pause: header.pause }),
      warnings,
      droppedBytes,
      droppedRecords: droppedBytes > 0 ? 1 : 0,
      complete: this.#end !== undefined,
    };
  }

  #finishWithoutHeader(droppedBytes: number): RawRecording {
    const warning =
      droppedBytes === 0
        ? `${this.#path} is empty, so it contains no samples`
        : `${this.#path} is cut short inside its header: dropped ` +
          `${droppedBytes} bytes (1 incomplete record), so it contains no samples`;
    const data = new ProfileData();
    return {
      path: this.#path,
      profile: new Profile({
        target: UNKNOWN_TARGET,
        data,
        stats: data.stats,
        durationSeconds: 0,
      }),
      warnings: [warning],
      droppedBytes,
      droppedRecords: droppedBytes > 0 ? 1 : 0,
      complete: false,
    };
  }

  /** Buffers the part of a line that has no newline yet. */
  #keep(bytes: Buffer): void {
    if (bytes.length === 0) {
      return;
    }
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    if (this.#header === undefined && this.#lineStart === 0) {
      this.#checkPrefix(Buffer.concat(this.#pending, this.#pendingBytes));
    }
    if (this.#pendingBytes > MAX_RECORD_BYTES) {
      throw this.#invalid(
        this.#lineStart,
        `a record longer than ${MAX_RECORD_BYTES} bytes, which rbprof never writes`,
      );
    }
  }

  /** Rejects a foreign file from its first bytes, before a whole line of
   * it is buffered. */
  #checkPrefix(start: Buffer): void {
    const expected = Buffer.from(HEADER_PREFIX);
    const length = Math.min(start.length, expected.length);
    if (!start.subarray(0, length).equals(expected.subarray(0, length))) {
      throw new InvalidRecordingError(
        `${this.#path} is not an rbprof raw recording: the header at ` +
          `byte 0 does not start with ${HEADER_PREFIX}`,
        this.#path,
        0,
      );
    }
  }

  #handleLine(line: Buffer, offset: number): void {
    if (this.#header === undefined) {
      this.#checkPrefix(line);
      this.#header = this.#parse(offset, () => parseHeader(line.toString()));
      // parseHeader accepts only known states, so this cannot throw.
      const stateCodes = stateCodesFromNames(this.#header.states);
      this.#batches = new BatchBuilder(new ProfileData(stateCodes));
      return;
    }
    if (this.#end !== undefined || this.#limitBytes !== undefined) {
      const last = this.#end !== undefined ? 'end' : 'limit';
      throw this.#invalid(offset, `a record after the ${last} record`);
    }

    this.#parse(offset, () => this.#addRecord(line.toString()));
  }

  /** Parses a record after the header and adds it. Throws `RecordError`
   * or `SyntaxError`. */
  #addRecord(text: string): void {
    const batches = this.#batches!;
    const record = parseBodyRecord(text, this.#header!.states.length);
    switch (record.type) {
      case 'function':
        batches.addFunction(record);
        break;
      case 'thread':
        batches.addThread(record);
        break;
      case 'sample':
        batches.addSample(record);
        this.#lastTimeNs = Math.max(this.#lastTimeNs, record.time);
        break;
      case 'stats':
        batches.setStats(record);
        break;
      case 'warning':
        batches.addWarning(record.message);
        break;
      case 'limit':
        this.#limitBytes = record.maxBytes;
        break;
      case 'end':
        this.#end = record;
        break;
    }
  }

  /** Runs a parse step and turns its `RecordError` into an
   * `InvalidRecordingError` at `offset`. */
  #parse<T>(offset: number, step: () => T): T {
    try {
      return step();
    } catch (error) {
      if (error instanceof RecordError) {
        throw this.#invalid(offset, error.message);
      }
      if (error instanceof SyntaxError) {
        throw this.#invalid(offset, `not valid JSON (${error.message})`);
      }
      throw error;
    }
  }

  #invalid(offset: number, detail: string): InvalidRecordingError {
    return new InvalidRecordingError(
      `${this.#path}: invalid record at byte ${offset}: ${detail}`,
      this.#path,
      offset,
    );
  }
}

function toEnd(end: RecordingEnd): RecordingEnd {
  return end.message === undefined
    ? { reason: end.reason }
    : { reason: end.reason, message: end.message };
}
