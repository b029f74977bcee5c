// The files that `rbprof record` writes: the raw recording while it runs,
// and the profile in one format at the end or on SIGUSR1.

import fs from 'node:fs';
import path from 'node:path';

import {
  formatInfo,
  renderProfile,
  type ProfileFormat,
} from '../formats/index';
import type { Profile } from '../profile/profile';
import type { Recording } from '../record';
import { RAW_EXTENSION } from '../recording/format';
import { describeError, RawRecordingWriter } from '../recording/writer';
import type { ThreadState } from '../types';
import {
  cacheFolder,
  checkWritableFolder,
  createCacheFolder,
  outputStem,
  replaceFile,
  type CacheFolder,
  type Owner,
} from './outputs';

export interface RecordOutputOptions {
  /** The format of the profile file; no profile file when absent. */
  readonly format?: ProfileFormat;
  /** The profile file; in the cache folder when absent. */
  readonly file?: string;
  /** False for `--no-raw`. */
  readonly raw: boolean;
  /** The raw recording; in the cache folder when absent. */
  readonly rawFile?: string;
  readonly rawMaxBytes: number;
  readonly rateHz: number;
  readonly idle: boolean;
  /** The states that the profile file counts. */
  readonly states: readonly ThreadState[];
  /** Prints one line on stderr, such as a warning. */
  readonly log: (line: string) => void;
}

/** The profile file that `record` writes. */
interface ProfileFile {
  readonly path: string;
  readonly format: ProfileFormat;
  readonly owner?: Owner;
}

/**
 * The raw recording and the profile file of one recording. A file that
 * cannot be written ends in a warning; the recording goes on without it.
 */
export class RecordOutputs {
  readonly #options: RecordOutputOptions;
  readonly #raw?: RawRecordingWriter;
  readonly #profileFile?: ProfileFile;

  /** Starts writing the raw recording of `recording` and checks that the
   * profile file can be written. */
  constructor(recording: Recording, options: RecordOutputOptions) {
    this.#options = options;
    const stem = outputStem(new Date(), recording.target.pid);
    const cache = this.#cacheFolderIfNeeded(options);

    if (options.format !== undefined) {
      const extension = formatInfo(options.format).extension;
      this.#profileFile = this.#prepareProfileFile(
        options.file ?? inCache(cache, `${stem}${extension}`),
        options.format,
        options.file === undefined ? cache?.owner : undefined,
      );
    }
    if (options.raw) {
      const rawPath =
        options.rawFile ?? inCache(cache, `${stem}.${RAW_EXTENSION}`);
      this.#raw = this.#startRaw(
        recording,
        rawPath,
        options.rawFile === undefined ? cache?.owner : undefined,
      );
    }
  }

  /**
   * Writes the profile so far to the profile file and forces the raw
   * recording to disk, for SIGUSR1. Failures are warnings.
   */
  writeSnapshot(profile: Profile): void {
    const written: string[] = [];
    if (this.#raw !== undefined) {
      try {
        this.#raw.sync();
        written.push(`synced the raw recording ${this.#raw.path}`);
      } catch (error) {
        this.#warn(
          `syncing the raw recording ${this.#raw.path} failed: ${describeError(error)}`,
        );
      }
    }
    if (this.#profileFile !== undefined) {
      try {
        this.#writeProfile(profile);
        written.push(`wrote the profile so far to ${this.#profileFile.path}`);
      } catch (error) {
        this.#warn((error as Error).message);
      }
    }
    const done = written.length === 0 ? 'nothing to write' : written.join(', ');
    this.#options.log(`SIGUSR1: ${done}.`);
  }

  /**
   * Ends the raw recording with the final profile, then writes the
   * profile file. Throws a `FileAccessError` when the profile file cannot
   * be written, after the raw recording is complete.
   */
  async finish(profile: Profile): Promise<void> {
    if (this.#raw !== undefined) {
      await this.#raw.finish(profile);
      this.#options.log(`Raw recording: ${this.#raw.path}`);
    }
    if (this.#profileFile !== undefined) {
      this.#writeProfile(profile);
      this.#options.log(`Profile: ${this.#profileFile.path}`);
    }
  }

  /** Closes the raw recording, without an end record unless `finish()`
   * wrote one. */
  close(): void {
    this.#raw?.close();
  }

  #cacheFolderIfNeeded(options: RecordOutputOptions): CacheFolder | undefined {
    const needsProfile =
      options.format !== undefined && options.file === undefined;
    const needsRaw = options.raw && options.rawFile === undefined;
    if (!needsProfile && !needsRaw) {
      return undefined;
    }
    const folder = cacheFolder();
    try {
      createCacheFolder(folder);
    } catch (error) {
      // The writes below fail in the missing folder and warn.
      this.#warn(
        `${(error as Error).message}. Pass --file and --raw-file to write elsewhere.`,
      );
    }
    return folder;
  }

  #prepareProfileFile(
    file: string,
    format: ProfileFormat,
    owner: Owner | undefined,
  ): ProfileFile {
    try {
      checkWritableFolder(file);
    } catch (error) {
      this.#warn(
        `${(error as Error).message}, so the ${format} profile cannot be ` +
          `saved as ${file} at the end. Recording goes on`,
      );
    }
    return owner === undefined
      ? { path: file, format }
      : { path: file, format, owner };
  }

  #startRaw(
    recording: Recording,
    file: string,
    owner: Owner | undefined,
  ): RawRecordingWriter | undefined {
    let writer: RawRecordingWriter;
    try {
      writer = new RawRecordingWriter({
        path: file,
        maxBytes: this.#options.rawMaxBytes,
        startTime: new Date(recording.profile().startTimeMs ?? Date.now()),
        rateHz: this.#options.rateHz,
        idle: this.#options.idle,
        target: recording.target,
        onWarning: (message) => this.#warn(`${message}. Recording goes on`),
      });
    } catch (error) {
      this.#warn(
        `cannot write the raw recording ${file}: ${describeError(error)}. ` +
          'Recording goes on without it. Choose another file with --raw-file ' +
          'or turn it off with --no-raw',
      );
      return undefined;
    }
    if (owner !== undefined) {
      giveTo(file, owner, (message) => this.#warn(message));
    }
    writer.consume(recording.samples());
    return writer;
  }

  #writeProfile(profile: Profile): void {
    const file = this.#profileFile!;
    const data = renderProfile(profile, file.format, {
      states: this.#options.states,
    });
    replaceFile(file.path, data, file.owner);
  }

  #warn(message: string): void {
    this.#options.log(`rbprof: warning: ${message}`);
  }
}

function inCache(cache: CacheFolder | undefined, name: string): string {
  // The cache folder is known whenever a file goes into it.
  return path.join(cache!.path, name);
}

function giveTo(
  file: string,
  owner: Owner,
  warn: (message: string) => void,
): void {
  try {
    fs.chownSync(file, owner.uid, owner.gid);
  } catch (error) {
    warn(`cannot give ${file} to user ${owner.uid}: ${describeError(error)}`);
  }
}
