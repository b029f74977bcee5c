import fs from 'node:fs';

import { Command, Option } from 'commander';

import {
  InvalidArgumentError,
  PROFILE_FORMATS,
  RbprofError,
  record,
  SamplingFailedError,
  shellStatus,
  type LaunchedProcess,
  type ProcessInfo,
  type Profile,
  type ProfileFormat,
  type Recording,
  type RecordOptions,
  type TargetInfo,
  type ThreadState,
} from '../index';
import { formatByProcess, formatByThread } from './by-thread';
import { ChildExitStatus, reportError } from './errors';
import { LiveSummary } from './live';
import {
  parseDuration,
  parseMegabytes,
  parsePid,
  parseRate,
  parseThreads,
  parseTop,
  parseVersion,
} from './options';
import {
  formatPauseLength,
  nonblockingOption,
  pauseOption,
  pauseSetting,
  type PauseFlags,
} from './pause-options';
import { RecordOutputs, type RecordOutputOptions } from './record-outputs';

interface RecordFlags extends PauseFlags {
  pid?: number;
  rate: number;
  duration?: number;
  silent?: boolean;
  top: number;
  forceVersion?: string;
  idle?: boolean;
  threads?: string[];
  byThread?: boolean;
  byProcess?: boolean;
  subprocesses?: boolean;
  format?: ProfileFormat;
  file?: string;
  raw: boolean;
  rawFile?: string;
  rawMaxMb: number;
}

/** The default of `--raw-max-mb`: about 4 hours of one busy thread at
 * 99 Hz, estimated at 350 bytes per sample of 30 frames. */
const DEFAULT_RAW_MAX_MB = 512;

/** The maximum length in bytes of a title in a per-process heading. */
const MAX_TITLE_BYTES = 200;

/** Above this share of late or failed samples, the summary is suspect. */
const SKEWED_SHARE = 0.1;

export function recordCommand(): Command {
  return new Command('record')
    .description(
      'Profile a running Ruby process until Ctrl+C, --duration or its exit, ' +
        'then print a summary of where it spent its time. With a command ' +
        'after --, start that command, profile it from its first Ruby ' +
        'frame, print the summary on stderr and exit with its status.',
    )
    .argument('[command...]', 'the command to start and profile, after --')
    .option('--pid <pid>', 'process id of the Ruby process', parsePid)
    .option('--rate <hz>', 'samples per second, at most 10000', parseRate, 99)
    .option(
      '--duration <seconds>',
      'stop after this many seconds',
      parseDuration,
    )
    .option('--top <rows>', 'rows of the summary tables', parseTop, 20)
    .option('--silent', 'print neither the live nor the final summary')
    .option(
      '--idle',
      'also sample threads that are not running on a CPU, and count them',
    )
    .addOption(pauseOption())
    .addOption(nonblockingOption())
    .option(
      '--threads <names-or-ids>',
      'sample only threads whose Thread#name or native thread id is in ' +
        'this comma-separated list',
      parseThreads,
    )
    .option(
      '--subprocesses',
      'also profile the Ruby processes that descend from the target, such ' +
        'as forked workers, including ones that start later',
    )
    .addOption(
      new Option('--by-thread', 'print one summary table per thread').conflicts(
        'byProcess',
      ),
    )
    .option('--by-process', 'print one summary table per process')
    .addOption(
      new Option(
        '--format <format>',
        'also write the profile in this format at the end and on SIGUSR1',
      ).choices(PROFILE_FORMATS),
    )
    .option(
      '--file <path>',
      'the file for --format (default: the cache folder, ' +
        '$XDG_CACHE_HOME/rbprof or ~/.cache/rbprof)',
    )
    .addOption(
      new Option(
        '--raw-file <path>',
        'the raw recording of every sample, for `rbprof report` ' +
          '(default: the cache folder)',
      ).conflicts('raw'),
    )
    .option('--no-raw', 'write no raw recording')
    .option(
      '--raw-max-mb <size>',
      'stop writing the raw recording at this size in MiB, ' +
        'while the recording goes on',
      parseMegabytes,
      DEFAULT_RAW_MAX_MB,
    )
    .option(
      '--force-version <version>',
      'read the process with the struct layouts of this Ruby version (X.Y.Z)',
      parseVersion,
    )
    .action(recordAction);
}

async function recordAction(
  command: string[],
  flags: RecordFlags,
): Promise<void> {
  if (flags.file !== undefined && flags.format === undefined) {
    throw new InvalidArgumentError(
      '--file needs --format to choose the format of the file',
    );
  }
  if ((flags.pid === undefined) === (command.length === 0)) {
    throw new InvalidArgumentError(
      'give either --pid PID or a command after --, such as ' +
        '`rbprof record -- ruby app.rb`',
    );
  }
  const launching = command.length > 0;
  const { stderr } = process;
  // In launch mode, stdout belongs to the launched program.
  const stdout = launching ? stderr : process.stdout;
  const controller = new AbortController();
  // Signals that arrive before the launched child is known are forwarded
  // once it is.
  const missedSignals: NodeJS.Signals[] = [];
  let launched: LaunchedProcess | undefined;
  // A launched child ends the recording by its exit, so each signal goes
  // on to the child instead of stopping the sampler.
  const onSignal = (signal: NodeJS.Signals) => {
    if (!launching) {
      controller.abort();
    } else if (launched === undefined) {
      missedSignals.push(signal);
    } else {
      launched.forwardSignal(signal);
    }
  };
  const setLaunched = (child: LaunchedProcess) => {
    launched = child;
    for (const signal of missedSignals.splice(0)) {
      child.forwardSignal(signal);
    }
  };
  let outputs: RecordOutputs | undefined;
  let recording: Recording | undefined;
  // Installed first, because without a listener SIGUSR1 starts Node's
  // inspector.
  const onSnapshot = () => {
    if (outputs !== undefined && recording !== undefined) {
      outputs.writeSnapshot(recording.profile());
    }
  };
  process.on('SIGUSR1', onSnapshot);
  if (launching) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  } else {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  let live: LiveSummary | undefined;
  const log = (line: string) =>
    live === undefined ? stderr.write(`${line}\n`) : live.printAbove(line);
  const states: ThreadState[] = flags.idle
    ? ['running', 'waiting_gvl', 'blocked']
    : ['running'];
  try {
    try {
      recording = await record(
        recordOptions(command, flags, controller.signal),
      );
    } catch (error) {
      if (error instanceof RbprofError && error.launched !== undefined) {
        // The child runs on without rbprof, and its status is the result.
        setLaunched(error.launched);
        reportError(error, stderr);
        await exitLikeChild(error.launched);
      }
      throw error;
    }
    if (recording.launched !== undefined) {
      setLaunched(recording.launched);
    }
    stderr.write(describeStart(recording.target, flags, recording.pause));
    outputs = new RecordOutputs(recording, {
      ...outputOptions(flags),
      states,
      log,
    });

    // The launched program writes to the same terminal, which a redrawn
    // summary would garble.
    if (stderr.isTTY && !flags.silent && !launching) {
      const current = recording;
      live = new LiveSummary(stderr, () => current.profile(), {
        top: flags.top,
        states,
      });
    }
    let profile: Profile;
    try {
      profile = await recording.done;
    } catch (error) {
      live?.stop();
      live = undefined;
      if (error instanceof SamplingFailedError) {
        if (!flags.silent) {
          stdout.write(formatFinal(error.profile, flags, states));
        }
        // The sampling failure is the error to report, so a file that
        // cannot be written only adds a warning.
        await outputs
          .finish(error.profile)
          .catch((writeError: Error) =>
            log(`rbprof: warning: ${writeError.message}`),
          );
      }
      if (launched !== undefined) {
        reportError(error, stderr);
        await exitLikeChild(launched);
      }
      throw error;
    }
    live?.stop();
    live = undefined;

    if (!flags.silent) {
      stdout.write(formatFinal(profile, flags, states));
    }
    stderr.write(describeEnd(profile));
    if (flags.subprocesses) {
      stderr.write(describeProcesses(recording.processes()));
    }
    await outputs.finish(profile);
    if (launched !== undefined) {
      await exitLikeChild(launched);
    }
  } finally {
    outputs?.close();
    process.off('SIGUSR1', onSnapshot);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Formats the final summary: one table, or one per thread with
 * --by-thread, or one per process with --by-process. */
function formatFinal(
  profile: Profile,
  flags: RecordFlags,
  states: ThreadState[],
): string {
  if (flags.byThread) {
    return formatByThread(profile, { states, top: flags.top });
  }
  if (flags.byProcess) {
    return formatByProcess(profile, {
      states,
      top: flags.top,
      titleOf: processTitle,
    });
  }
  return profile.toSummary({ top: flags.top, states });
}

/**
 * Reads the title of a process that still runs, as `ps` shows it: servers
 * such as puma name each worker in its title (`$0`). Returns undefined
 * for a process that is gone.
 */
function processTitle(pid: number): string | undefined {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return undefined;
  }
  const title = raw
    .subarray(0, MAX_TITLE_BYTES)
    .toString('utf8')
    .replace(/\0+$/, '')
    .replace(/\0/g, ' ');
  return title === '' ? undefined : title;
}

/** Waits for a launched child and ends the CLI with its exit status, or
 * 128 plus the signal that killed it. */
async function exitLikeChild(launched: LaunchedProcess): Promise<never> {
  throw new ChildExitStatus(shellStatus(await launched.exit));
}

function recordOptions(
  command: string[],
  flags: RecordFlags,
  signal: AbortSignal,
): RecordOptions {
  return {
    ...(command.length > 0 ? { command } : { pid: flags.pid }),
    rateHz: flags.rate,
    signal,
    idle: flags.idle ?? false,
    ...(flags.duration === undefined
      ? {}
      : { durationSeconds: flags.duration }),
    ...(flags.forceVersion === undefined
      ? {}
      : { forceVersion: flags.forceVersion }),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.subprocesses === true ? { subprocesses: true } : {}),
    ...pauseSetting(flags),
  };
}

function outputOptions(
  flags: RecordFlags,
): Omit<RecordOutputOptions, 'states' | 'log'> {
  return {
    ...(flags.format === undefined ? {} : { format: flags.format }),
    ...(flags.file === undefined ? {} : { file: flags.file }),
    raw: flags.raw,
    ...(flags.rawFile === undefined ? {} : { rawFile: flags.rawFile }),
    rawMaxBytes: Math.floor(flags.rawMaxMb * 2 ** 20),
  };
}

function describeStart(
  target: TargetInfo,
  flags: RecordFlags,
  pause: boolean,
): string {
  const until =
    flags.duration === undefined
      ? 'until Ctrl+C or its exit'
      : `for ${flags.duration} s or until Ctrl+C`;
  const processes = flags.subprocesses
    ? `process ${target.pid} and its Ruby subprocesses`
    : `process ${target.pid}`;
  let text = `Recording ${processes} (Ruby ${target.rubyVersion}) at ${flags.rate} Hz ${until}.\n`;
  if (pause) {
    text += "Each sample stops the target's threads while it reads them.\n";
  }
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
  const { pause } = stats;
  if (pause !== undefined && pause.count > 0) {
    lines.push(
      `Pauses of the target: mean ${formatPauseLength(pause.totalNs / pause.count)}, ` +
        `max ${formatPauseLength(pause.maxNs)} (${pause.count} pauses).`,
    );
  }
  const skewed =
    stats.taken > 0 && (stats.late + stats.failed) / stats.taken > SKEWED_SHARE;
  if (skewed) {
    lines.push(
      `rbprof: warning: ${percent(stats.late, stats.taken)} of samples were late and ` +
        `${percent(stats.failed, stats.taken)} failed, so the summary may be skewed. ` +
        'Late samples mean the rate is too high for this machine: try a lower --rate.' +
        (pause === undefined && stats.failed > 0
          ? ' Failed samples are stacks that changed while they were read: ' +
            '--pause prevents that.'
          : ''),
    );
  }
  return lines.map((line) => `${line}\n`).join('');
}

/** Lists the processes that a recording with --subprocesses sampled. */
function describeProcesses(processes: ProcessInfo[]): string {
  const described = processes.map((info) => {
    const parent = info.parentPid === 0 ? '' : `, from ${info.parentPid}`;
    const exited = info.exitedNs === undefined ? '' : ', exited';
    return `${info.pid} (Ruby ${info.rubyVersion}${parent}${exited})`;
  });
  const unit = processes.length === 1 ? 'process' : 'processes';
  return `Sampled ${processes.length} ${unit}: ${described.join(', ')}.\n`;
}

function percent(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(1)}%`;
}
