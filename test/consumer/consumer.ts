// A program that uses rbprof as an application would. A test compiles it
// with `tsc --strict --noEmit` against the packed package, to check that
// index.d.ts types these uses and rejects the lines marked
// `@ts-expect-error`. It is never run.

import {
  formatInfo,
  formatSnapshot,
  InvalidArgumentError,
  InvalidRecordingError,
  isProfileFormat,
  NoSuchProcessError,
  PermissionDeniedError,
  Profile,
  PROFILE_FORMATS,
  RbprofError,
  readRecording,
  record,
  renderProfile,
  SamplingFailedError,
  snapshot,
  supportedVersions,
  writeRawRecording,
  type EndReason,
  type ProcessRows,
  type ProfileFormat,
  type RecordOptions,
  type Recording,
  type Sample,
  type Snapshot,
  type SummaryRow,
  type ThreadRows,
} from 'rbprof';

/** Records a process and returns its summary, or why it could not. */
export async function summarize(pid: number, seconds: number): Promise<string> {
  const controller = new AbortController();
  const options: RecordOptions = {
    pid,
    rateHz: 99,
    durationSeconds: seconds,
    signal: controller.signal,
    idle: false,
  };
  let recording: Recording;
  try {
    recording = await record(options);
  } catch (error) {
    if (error instanceof NoSuchProcessError) {
      return `no process ${pid} (${error.code})`;
    }
    if (error instanceof PermissionDeniedError) {
      return error.hint ?? error.message;
    }
    if (error instanceof RbprofError) {
      const code: string = error.code;
      return code;
    }
    throw error;
  }

  const writer = writeRawRecording(recording, {
    path: `/tmp/rbprof-${pid}.raw.jsonl`,
    maxBytes: 64 << 20,
    onWarning: (message: string) => console.warn(message),
  });
  const leaves: string[] = [];
  for await (const batch of recording.samples()) {
    for (const sample of batch.samples) {
      const leaf: Sample['frames'][number] | undefined = sample.frames.at(-1);
      const atMs: number = sample.timeNs / 1e6;
      leaves.push(`${leaf?.function.name ?? '?'} at ${atMs} ms`);
    }
    if (batch.stats.threadSamples > 1000) {
      controller.abort();
    }
  }

  let profile: Profile;
  try {
    profile = await recording.done;
  } catch (error) {
    if (!(error instanceof SamplingFailedError)) {
      throw error;
    }
    profile = error.profile;
  }
  await writer.finish(profile);

  const reason: EndReason | undefined = profile.end?.reason;
  const rows: SummaryRow[] = profile.rows({ by: 'line', states: ['running'] });
  const threads: ThreadRows[] = profile.byThread();
  const processes: ProcessRows[] = profile.byProcess({ pid });
  const busiest = threads[0];
  const counted: number =
    busiest === undefined
      ? 0
      : profile.countSamples({ thread: busiest.thread.id });
  const durationSeconds: number = profile.stats.durationSeconds;
  const startedAt = new Date(profile.startTimeMs ?? recording.startTimeMs);
  const pprof: Buffer = profile.toPprof();
  return [
    `ended: ${reason ?? 'still recording'} after ${durationSeconds} s`,
    `started ${startedAt.toISOString()} at ${recording.rateHz} Hz`,
    `top row: ${rows[0]?.function.name ?? 'none'} ${rows[0]?.totalPercent ?? 0} %`,
    `busiest thread: ${busiest?.thread.name ?? 'none'} with ${counted} samples`,
    `processes: ${processes.map((view) => view.pid).join(', ')}`,
    `pprof: ${pprof.length} bytes, ${leaves.length} samples streamed`,
    profile.toSummary({ top: 10, thread: busiest?.thread.id }),
  ].join('\n');
}

/** Renders a raw recording in a format named by the user. */
export async function report(path: string, name: string): Promise<string> {
  if (!isProfileFormat(name)) {
    throw new InvalidArgumentError(
      `unknown format ${name}; use one of ${PROFILE_FORMATS.join(', ')}`,
    );
  }
  const format: ProfileFormat = name;
  try {
    const raw = await readRecording(path);
    const output = renderProfile(raw.profile, format, { states: ['running'] });
    const extension: string = formatInfo(format).extension;
    return typeof output === 'string'
      ? output
      : `${output.length} bytes for a ${extension} file`;
  } catch (error) {
    if (error instanceof InvalidRecordingError) {
      return `${error.path} is invalid at byte ${error.offset}`;
    }
    throw error;
  }
}

/** Prints the stacks of a live process and of a core file. */
export async function stacks(pid: number, core: string): Promise<string> {
  const live: Snapshot = await snapshot({ pid });
  const dumped = await snapshot({ core, binary: '/usr/lib/libruby.so.3.1' });
  const versions = supportedVersions().map((range) => range.from);
  return `${formatSnapshot(live)}${formatSnapshot(dumped)}${versions.join()}`;
}

// Each line below must fail to compile.

// @ts-expect-error: the duration is in seconds, in durationSeconds.
export const durationInMilliseconds: RecordOptions = { pid: 1, durationMs: 10 };

// @ts-expect-error: the rate is rateHz.
export const rateWithoutUnit: RecordOptions = { pid: 1, rate: 99 };

export function invalidUses(profile: Profile): void {
  // @ts-expect-error: rows are keyed by function or line only.
  profile.rows({ by: 'file' });
  // @ts-expect-error: not a thread state.
  profile.rows({ states: ['sleeping'] });
  // @ts-expect-error: a thread is selected by its numeric id.
  profile.byThread({ thread: 'main' });
  // @ts-expect-error: not a format name.
  renderProfile(profile, 'svg');
  // @ts-expect-error: a snapshot needs a pid or a core file.
  void snapshot({});
  // @ts-expect-error: profiles come from record() and readRecording().
  void new Profile({});
}
