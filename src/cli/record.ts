import { Command } from 'commander';

import { SamplingFailedError } from '../errors';
import type { Profile } from '../profile/profile';
import { record, type RecordOptions } from '../record';
import type { TargetInfo } from '../types';
import { LiveSummary } from './live';
import {
  parseDuration,
  parsePid,
  parseRate,
  parseTop,
  parseVersion,
} from './options';

interface RecordFlags {
  pid: number;
  rate: number;
  duration?: number;
  silent?: boolean;
  top: number;
  forceVersion?: string;
}

/** Above this share of late or failed samples, the summary is suspect. */
const SKEWED_SHARE = 0.1;

export function recordCommand(): Command {
  return new Command('record')
    .description(
      'Profile a running Ruby process until Ctrl+C, --duration or its exit, ' +
        'then print a summary of where it spent its time.',
    )
    .requiredOption('--pid <pid>', 'process id of the Ruby process', parsePid)
    .option('--rate <hz>', 'samples per second', parseRate, 99)
    .option(
      '--duration <seconds>',
      'stop after this many seconds',
      parseDuration,
    )
    .option('--top <rows>', 'rows of the summary tables', parseTop, 20)
    .option('--silent', 'print neither the live nor the final summary')
    .option(
      '--force-version <version>',
      'read the process with the struct layouts of this Ruby version (X.Y.Z)',
      parseVersion,
    )
    .action(recordAction);
}

async function recordAction(flags: RecordFlags): Promise<void> {
  const { stdout, stderr } = process;
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const options: RecordOptions = {
      pid: flags.pid,
      rateHz: flags.rate,
      signal: controller.signal,
      ...(flags.duration === undefined
        ? {}
        : { durationSeconds: flags.duration }),
      ...(flags.forceVersion === undefined
        ? {}
        : { forceVersion: flags.forceVersion }),
    };
    const recording = await record(options);
    stderr.write(describeStart(recording.target, flags));

    const live =
      stderr.isTTY && !flags.silent
        ? new LiveSummary(stderr, () => recording.profile(), { top: flags.top })
        : undefined;
    let profile: Profile;
    try {
      profile = await recording.done;
    } catch (error) {
      if (error instanceof SamplingFailedError && !flags.silent) {
        stdout.write(error.profile.toSummary({ top: flags.top }));
      }
      throw error;
    } finally {
      live?.stop();
    }

    if (!flags.silent) {
      stdout.write(profile.toSummary({ top: flags.top }));
    }
    stderr.write(describeEnd(profile));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function describeStart(target: TargetInfo, flags: RecordFlags): string {
  const until =
    flags.duration === undefined
      ? 'until Ctrl+C or its exit'
      : `for ${flags.duration} s or until Ctrl+C`;
  let text = `Recording process ${target.pid} (Ruby ${target.rubyVersion}) at ${flags.rate} Hz ${until}.\n`;
  if (flags.forceVersion !== undefined) {
    text += `Reading it with the struct layouts of Ruby ${flags.forceVersion}, as --force-version requests.\n`;
  }
  if (!target.layoutVerified) {
    text +=
      `rbprof: warning: the struct layouts for Ruby ${target.layoutVersion} were never ` +
      'checked against a live process, so names or stacks may be wrong.\n';
  }
  return text;
}

/** Describes how the recording ended and how sampling went. */
export function describeEnd(profile: Profile): string {
  const { stats, target, end } = profile;
  const lines: string[] = [];
  if (end?.reason === 'process_exited') {
    lines.push(
      `Process ${target.pid} ended; the summary covers the samples taken until then.`,
    );
  }
  if (profile.rows().length === 0) {
    lines.push('No thread was sampled while running Ruby code.');
  }
  for (const warning of profile.warnings) {
    lines.push(`rbprof: warning: ${warning}`);
  }
  lines.push(
    `Samples: ${stats.taken} taken, ${stats.late} late, ${stats.failed} failed ` +
      `(${stats.threadSamples} thread-samples in ${stats.durationSeconds.toFixed(1)} s).`,
  );
  const skewed =
    stats.taken > 0 && (stats.late + stats.failed) / stats.taken > SKEWED_SHARE;
  if (skewed) {
    lines.push(
      `rbprof: warning: ${percent(stats.late, stats.taken)} of samples were late and ` +
        `${percent(stats.failed, stats.taken)} failed, so the summary may be skewed. ` +
        'Late samples mean the rate is too high for this machine: try a lower --rate.',
    );
  }
  return lines.map((line) => `${line}\n`).join('');
}

function percent(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1)}%`;
}
