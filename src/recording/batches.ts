import type { ProfileData, RawBatch } from '../profile/data';
import type { SamplerStats } from '../types';
import type { FunctionRecord, SampleRecord, ThreadRecord } from './format';
import { RecordError } from './records';

/** Samples per batch handed to the profile data. */
const BATCH_SAMPLES = 4096;

/**
 * Collects the records of a raw recording into batches of the shape the
 * addon delivers and adds them to profile data, so that a profile read
 * from a file is built the same way as one recorded live.
 */
export class BatchBuilder {
  readonly data: ProfileData;
  readonly #definedFunctions = new Set<number>();
  readonly #definedThreads = new Set<number>();
  #functions: Array<RawBatch['functions'][number]> = [];
  #threads: Array<RawBatch['threads'][number]> = [];
  #timesNs: number[] = [];
  #threadIds: number[] = [];
  #states: number[] = [];
  #frameStarts: number[] = [0];
  #frameFunctions: number[] = [];
  #frameLines: number[] = [];
  #stats: SamplerStats = { taken: 0, late: 0, failed: 0, threadSamples: 0 };
  #warnings: string[] = [];

  constructor(data: ProfileData) {
    this.data = data;
  }

  addFunction(record: FunctionRecord): void {
    if (this.#definedFunctions.has(record.id)) {
      throw new RecordError(`function ${record.id} is defined twice`);
    }
    this.#definedFunctions.add(record.id);
    this.#functions.push({
      id: record.id,
      name: record.name,
      path: record.path,
      kind: record.kind,
    });
  }

  addThread(record: ThreadRecord): void {
    if (this.#definedThreads.has(record.id)) {
      throw new RecordError(`thread ${record.id} is defined twice`);
    }
    this.#definedThreads.add(record.id);
    this.#threads.push({
      id: record.id,
      pid: record.pid,
      tid: record.tid,
      name: record.name ?? null,
    });
  }

  /** Adds a sample whose thread and functions are defined; throws
   * `RecordError` otherwise. */
  addSample(record: SampleRecord): void {
    if (!this.#definedThreads.has(record.thread)) {
      throw new RecordError(
        `the sample uses thread ${record.thread}, which no earlier record defines`,
      );
    }
    for (const [fn] of record.frames) {
      if (!this.#definedFunctions.has(fn)) {
        throw new RecordError(
          `the sample uses function ${fn}, which no earlier record defines`,
        );
      }
    }
    this.#timesNs.push(record.time);
    this.#threadIds.push(record.thread);
    this.#states.push(record.state);
    for (const [fn, line] of record.frames) {
      this.#frameFunctions.push(fn);
      this.#frameLines.push(line);
    }
    this.#frameStarts.push(this.#frameFunctions.length);
    if (this.#timesNs.length >= BATCH_SAMPLES) {
      this.flush();
    }
  }

  setStats(stats: SamplerStats): void {
    const { taken, late, failed, threadSamples, pause } = stats;
    this.#stats = {
      taken,
      late,
      failed,
      threadSamples,
      ...(pause === undefined ? {} : { pause }),
    };
  }

  addWarning(message: string): void {
    this.#warnings.push(message);
  }

  /** Adds what was collected to the data as one batch. */
  flush(): void {
    this.data.add({
      functions: this.#functions,
      threads: this.#threads,
      timesNs: this.#timesNs,
      threadIds: this.#threadIds,
      states: this.#states,
      frameStarts: this.#frameStarts,
      frameFunctions: this.#frameFunctions,
      frameLines: this.#frameLines,
      stats: this.#stats,
      warnings: this.#warnings,
    });
    this.#functions = [];
    this.#threads = [];
    this.#timesNs = [];
    this.#threadIds = [];
    this.#states = [];
    this.#frameStarts = [0];
    this.#frameFunctions = [];
    this.#frameLines = [];
    this.#warnings = [];
  }
}
