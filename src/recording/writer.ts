import fs from 'node:fs';

import { FileAccessError } from '../errors';
import type { Profile } from '../profile/profile';
import { THREAD_STATES } from '../profile/data';
import type { Recording } from '../record';
import { describeError } from '../system-errors';
import type {
  FunctionInfo,
  SampleBatch,
  SamplerStats,
  TargetInfo,
  ThreadInfo,
} from '../types';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  type BodyRecord,
  type HeaderRecord,
} from './format';

/** Options of `writeRawRecording()`. */
export interface RawRecordingOptions {
  /** The file to create, or to truncate when it exists. */
  readonly path: string;
  /** The file stops growing before it would exceed this many bytes,
   * apart from one short `limit` record. No limit when absent. */
  readonly maxBytes?: number;
  /** Receives each problem that ends the file early, such as a full disk
   * or the size limit. The recording goes on without the file. */
  readonly onWarning?: (message: string) => void;
}

/** A raw recording that is being written. */
export interface RawRecordingWriter {
  /** The file, as given. */
  readonly path: string;
  /** Bytes in the file so far. */
  readonly size: number;
  /** False once the file is closed or ended early by a failure or the
   * size limit. */
  readonly writing: boolean;
  /** Forces what was written to disk. Throws a `FileAccessError` when
   * that fails. */
  sync(): void;
  /** Waits for the batches not yet written, then writes the final stats
   * and the end record of `profile`, the recording's final profile, and
   * closes the file. */
  finish(profile: Profile): Promise<void>;
  /** Closes the file without an end record, as a crash would leave it,
   * unless `finish()` wrote one. */
  close(): void;
}

/** The members of a `Recording` that the writer reads. */
type RecordingSource = Pick<
  Recording,
  'target' | 'rateHz' | 'idle' | 'startTimeMs' | 'samples'
> &
  Partial<Pick<Recording, 'pause'>>;

/**
 * Starts writing a raw recording of `recording`: every batch of samples
 * that arrives after the call, with their times, goes to the file as it
 * arrives. `readRecording()` and `rbprof report` read the file, also when
 * it is cut short. Throws a `FileAccessError` when the file cannot be
 * created.
 */
export function writeRawRecording(
  recording: RecordingSource,
  options: RawRecordingOptions,
): RawRecordingWriter {
  let writer: RawRecordingFileWriter;
  try {
    writer = new RawRecordingFileWriter({
      path: options.path,
      maxBytes: options.maxBytes ?? Number.POSITIVE_INFINITY,
      startTime: new Date(recording.startTimeMs),
      rateHz: recording.rateHz,
      idle: recording.idle,
      ...(recording.pause === undefined ? {} : { pause: recording.pause }),
      target: recording.target,
      onWarning: options.onWarning ?? (() => undefined),
    });
  } catch (error) {
    throw new FileAccessError(
      `cannot write the raw recording ${options.path}: ${describeError(error)}`,
      options.path,
      { cause: error },
    );
  }
  writer.consume(recording.samples());
  return writer;
}

export interface RawWriterOptions {
  readonly path: string;
  /** The file stops growing before it would exceed this many bytes,
   * apart from the one short `limit` record. */
  readonly maxBytes: number;
  readonly startTime: Date;
  readonly rateHz: number;
  readonly idle: boolean;
  /** Whether the recording pauses the target for each read; left out of
   * the header when absent. */
  readonly pause?: boolean;
  readonly target: TargetInfo;
  /** Receives each problem that ends the file early, such as a full disk
   * or the size limit. The recording goes on without the file. */
  readonly onWarning: (message: string) => void;
}

/**
 * Writes a raw recording (see `format.ts`) while the recording runs. Each
 * batch of samples goes to the file as soon as it arrives, which is
 * several times a second, so a crash or SIGKILL of rbprof loses at most
 * the samples not yet polled from the sampler. Only the ids of functions
 * and threads already written are kept, so memory does not grow with the
 * number of samples.
 */
export class RawRecordingFileWriter implements RawRecordingWriter {
  readonly path: string;
  readonly #fd: number;
  readonly #maxBytes: number;
  readonly #onWarning: (message: string) => void;
  readonly #functionsWritten = new Set<number>();
  readonly #threadsWritten = new Set<number>();
  #statsWritten?: SamplerStats;
  #bytesWritten = 0;
  /** True once the file is closed or ended early, after which nothing
   * more is written. */
  #stopped = false;
  #closed = false;
  #consuming: Promise<void> = Promise.resolve();

  /**
   * Creates or truncates the file and writes the header. Throws the
   * error of `open` or `write` when the file cannot be written.
   */
  constructor(options: RawWriterOptions) {
    this.path = options.path;
    this.#maxBytes = options.maxBytes;
    this.#onWarning = options.onWarning;
    const header: HeaderRecord = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      startTime: options.startTime.toISOString(),
      rateHz: options.rateHz,
      idle: options.idle,
      ...(options.pause === undefined ? {} : { pause: options.pause }),
      states: THREAD_STATES,
      target: options.target,
    };
    this.#fd = fs.openSync(options.path, 'w', 0o644);
    try {
      this.#writeBytes(Buffer.from(`${JSON.stringify(header)}\n`));
    } catch (error) {
      fs.closeSync(this.#fd);
      throw error;
    }
  }

  /** Bytes in the file so far. */
  get size(): number {
    return this.#bytesWritten;
  }

  /** False once the file is closed or ended early by a failure or the
   * size limit. */
  get writing(): boolean {
    return !this.#stopped;
  }

  /**
   * Writes every batch of `batches` as it arrives, until the iterator
   * ends. An iterator that throws ends the stream as well; the recording
   * reports that failure itself.
   */
  consume(batches: AsyncIterable<SampleBatch>): void {
    this.#consuming = (async () => {
      try {
        for await (const batch of batches) {
          this.write(batch);
          if (this.#stopped) {
            // Ends the subscription, so batches are no longer decoded.
            break;
          }
        }
      } catch {
        // The recording's `done` rejects with the same error.
      }
    })();
  }

  /** Appends one batch: new functions and threads, samples, stats and
   * warnings. */
  write(batch: SampleBatch): void {
    const records: BodyRecord[] = [];
    for (const sample of batch.samples) {
      this.#addThread(records, sample.thread);
      const frames: Array<[number, number]> = [];
      for (const frame of sample.frames) {
        this.#addFunction(records, frame.function);
        frames.push([frame.function.id, frame.line]);
      }
      records.push({
        type: 'sample',
        time: sample.timeNs,
        thread: sample.thread.id,
        state: THREAD_STATES.indexOf(sample.state),
        frames,
      });
    }
    this.#addStats(records, batch.stats);
    for (const message of batch.warnings) {
      records.push({ type: 'warning', message });
    }
    this.#append(records);
  }

  /** Forces what was written to disk, for a reader on another machine
   * or after a power loss. Throws a `FileAccessError`. */
  sync(): void {
    if (this.#stopped) {
      return;
    }
    try {
      fs.fdatasyncSync(this.#fd);
    } catch (error) {
      throw new FileAccessError(
        `syncing the raw recording ${this.path} failed: ${describeError(error)}`,
        this.path,
        { cause: error },
      );
    }
  }

  /**
   * Waits for the batches that `consume()` has not written yet, then
   * writes the final stats and the end record of `profile` and closes the
   * file.
   */
  async finish(profile: Profile): Promise<void> {
    await this.#consuming;
    const records: BodyRecord[] = [];
    this.#addStats(records, profile.stats);
    const end = profile.end ?? { reason: 'stopped' };
    records.push({
      type: 'end',
      reason: end.reason,
      ...(end.message === undefined ? {} : { message: end.message }),
      durationSeconds: profile.stats.durationSeconds,
    });
    this.#append(records);
    this.close();
  }

  /** Closes the file without an end record, as a crash would leave it. */
  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#stopped = true;
      fs.closeSync(this.#fd);
    }
  }

  #addFunction(records: BodyRecord[], fn: FunctionInfo): void {
    if (this.#functionsWritten.has(fn.id)) {
      return;
    }
    this.#functionsWritten.add(fn.id);
    records.push({
      type: 'function',
      id: fn.id,
      name: fn.name,
      path: fn.path,
      kind: fn.kind,
    });
  }

  #addThread(records: BodyRecord[], thread: ThreadInfo): void {
    if (this.#threadsWritten.has(thread.id)) {
      return;
    }
    this.#threadsWritten.add(thread.id);
    records.push({
      type: 'thread',
      id: thread.id,
      pid: thread.pid,
      tid: thread.tid,
      ...(thread.name === undefined ? {} : { name: thread.name }),
    });
  }

  #addStats(records: BodyRecord[], stats: SamplerStats): void {
    const last = this.#statsWritten;
    if (
      last !== undefined &&
      last.taken === stats.taken &&
      last.late === stats.late &&
      last.failed === stats.failed &&
      last.threadSamples === stats.threadSamples &&
      last.pause?.count === stats.pause?.count
    ) {
      return;
    }
    const { taken, late, failed, threadSamples, pause } = stats;
    const written: SamplerStats = {
      taken,
      late,
      failed,
      threadSamples,
      ...(pause === undefined ? {} : { pause: { ...pause } }),
    };
    this.#statsWritten = written;
    records.push({ type: 'stats', ...written });
  }

  /**
   * Writes whole records up to the size limit. A record that would cross
   * the limit is replaced by a `limit` record, after which the file takes
   * nothing more.
   */
  #append(records: readonly BodyRecord[]): void {
    if (this.#stopped || records.length === 0) {
      return;
    }
    const lines: string[] = [];
    let bytes = this.#bytesWritten;
    let limitReached = false;
    for (const record of records) {
      const line = `${JSON.stringify(record)}\n`;
      const length = Buffer.byteLength(line);
      if (bytes + length > this.#maxBytes) {
        lines.push(
          `${JSON.stringify({ type: 'limit', maxBytes: this.#maxBytes })}\n`,
        );
        limitReached = true;
        break;
      }
      lines.push(line);
      bytes += length;
    }

    try {
      this.#writeBytes(Buffer.from(lines.join('')));
    } catch (error) {
      this.#onWarning(
        `writing the raw recording ${this.path} failed (${describeError(error)}), ` +
          `so it ends after ${this.#bytesWritten} bytes`,
      );
      this.close();
      return;
    }
    if (limitReached) {
      this.#onWarning(
        `the raw recording ${this.path} reached its size limit of ` +
          `${formatMegabytes(this.#maxBytes)}, so it lacks the samples that follow`,
      );
      this.close();
    }
  }

  #writeBytes(buffer: Buffer): void {
    let offset = 0;
    while (offset < buffer.length) {
      const written = fs.writeSync(this.#fd, buffer, offset);
      offset += written;
      this.#bytesWritten += written;
    }
  }
}

function formatMegabytes(bytes: number): string {
  return `${Number((bytes / 2 ** 20).toFixed(2))} MB`;
}
