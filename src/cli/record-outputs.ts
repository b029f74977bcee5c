// The files that `rbprof record` writes: the raw recording while it runs,
// and the profile in one format at the end or on SIGUSR1.

import fs from 'node:fs';
import path from 'node:path';

import {
  FileAccessError,
  formatInfo,
  renderProfile,
  writeRawRecording,
  type Profile,
  type ProfileFormat,
  type RawRecordingWriter,
  type Recording,
  type ThreadState,
} from '../index';
import { describeError } from '../system-errors';
import {
  cacheFolder,
  checkWritableFolder,
  createCacheFolder,
  outputStem,
  RAW_EXTENSION,
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
    const profileInCache =
      options.format !== undefined && options.file === undefined;
    const rawInCache = options.raw && options.rawFile === undefined;
    const cache =
      profileInCache || rawInCache ? this.#createCacheFolder() : undefined;
    const cacheFailed = cache !== undefined && !cache.created;

    if (cacheFailed) {
      const lost = [
        rawInCache ? 'the raw recording' : undefined,
        profileInCache ? `the ${options.format} profile` : undefined,
      ].filter((output) => output !== undefined);
      this.#warn(
        `${cache.error}, so ${lost.join(' and ')} cannot be written there. ` +
          'Recording goes on. Choose other files with --raw-file or --file',
      );
    }
    if (options.format !== undefined) {
      const extension = formatInfo(options.format).extension;
      const file =
        options.file ?? path.join(cache!.path, `${stem}${extension}`);
      if (!(profileInCache && cacheFailed)) {
        this.#checkProfileFolder(file, options.format);
      }
      const owner = profileInCache ? cache?.owner : undefined;
      this.#profileFile = {
        path: file,
        format: options.format,
        ...(owner === undefined ? {} : { owner }),
      };
    }
    if (options.raw && !(rawInCache && cacheFailed)) {
      const file =
        options.rawFile ?? path.join(cache!.path, `${stem}.${RAW_EXTENSION}`);
      this.#raw = this.#startRaw(
        recording,
        file,
        rawInCache ? cache?.owner : undefined,
      );
    }
  }

  /**
   * Writes the profile so far to the profile file and forces the raw
   * recording to disk, for SIGUSR1. Failures are warnings.
   */
  writeSnapshot(profile: Profile): void {
    const written: string[] = [];
    if (this.#raw?.writing) {
      try {
        this.#raw.sync();
        written.push(`synced the raw recording ${this.#raw.path}`);
      } catch (error) {
        this.#warn((error as Error).message);
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
    // A raw recording still being written at the end contains every sample.
    const rawComplete = this.#raw?.writing === true;
    if (this.#raw !== undefined) {
      await this.#raw.finish(profile);
      this.#options.log(`Raw recording: ${this.#raw.path}`);
    }
    if (this.#profileFile !== undefined) {
      try {
        this.#writeProfile(profile);
      } catch (error) {
        const raw = this.#raw;
        if (
          !(error instanceof FileAccessError) ||
          raw === undefined ||
          !rawComplete
        ) {
          throw error;
        }
        // The samples are safe in the raw recording, so the hint names the
        // command that renders them once the folder is fixed.
        throw new FileAccessError(error.message, error.path, {
          hint:
            `The raw recording ${raw.path} has every sample: ` +
            `\`rbprof report --input ${raw.path} --format ` +
            `${this.#profileFile.format} --file PATH\` writes the profile.`,
          cause: error,
        });
      }
      this.#options.log(`Profile: ${this.#profileFile.path}`);
    }
  }

  /** Closes the raw recording, without an end record unless `finish()`
   * wrote one. */
  close(): void {
    this.#raw?.close();
  }

  /** Creates the cache folder, or returns the `error` that prevented it. */
  #createCacheFolder(): CacheFolder &
    ({ created: true } | { created: false; error: string }) {
    const folder = cacheFolder();
    try {
      createCacheFolder(folder);
      return { ...folder, created: true };
    } catch (error) {
      return { ...folder, created: false, error: (error as Error).message };
    }
  }

  /** Warns when the profile file cannot be written; the write at the end
   * fails then, unless the folder is fixed in time. */
  #checkProfileFolder(file: string, format: ProfileFormat): void {
    try {
      checkWritableFolder(file);
    } catch (error) {
      this.#warn(
        `${(error as Error).message}, so the ${format} profile cannot be ` +
          `saved as ${file} at the end. Recording goes on`,
      );
    }
  }

  #startRaw(
    recording: Recording,
    file: string,
    owner: Owner | undefined,
  ): RawRecordingWriter | undefined {
    let writer: RawRecordingWriter;
    try {
      writer = writeRawRecording(recording, {
        path: file,
        maxBytes: this.#options.rawMaxBytes,
        onWarning: (message) => this.#warn(`${message}. Recording goes on`),
      });
    } catch (error) {
      this.#warn(
        `${(error as Error).message}. Recording goes on without it. ` +
          'Choose another file with --raw-file or turn it off with --no-raw',
      );
      return undefined;
    }
    if (owner !== undefined) {
      giveTo(file, owner, (message) => this.#warn(message));
    }
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
