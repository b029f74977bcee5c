import { Command, Option } from 'commander';

import {
  InvalidArgumentError,
  PROFILE_FORMATS,
  readRecording,
  renderProfile,
  type ProfileFormat,
  type ThreadState,
} from '../index';
import { formatByProcess, formatByThread } from './by-thread';
import { parseThreads, parseTop } from './options';
import { replaceFile } from './outputs';
import { describeEnd } from './record';

interface ReportFlags {
  input: string;
  format: ProfileFormat;
  file?: string;
  idle?: boolean;
  top?: number;
  threads?: string[];
  byThread?: boolean;
  byProcess?: boolean;
}

export function reportCommand(): Command {
  return new Command('report')
    .description(
      'Render a raw recording that `rbprof record` wrote in one of the ' +
        'profile formats.',
    )
    .requiredOption('--input <path>', 'the raw recording to read')
    .addOption(
      new Option('--format <format>', 'the output format')
        .choices(PROFILE_FORMATS)
        .default('summary'),
    )
    .option('--file <path>', 'write to this file instead of stdout')
    .option(
      '--idle',
      'also count samples of threads that were not running on a CPU',
    )
    .option(
      '--top <rows>',
      'rows of the summary tables (default: all)',
      parseTop,
    )
    .option(
      '--threads <names-or-ids>',
      'count only threads whose Thread#name or native thread id is in ' +
        'this comma-separated list',
      parseThreads,
    )
    .addOption(
      new Option(
        '--by-thread',
        'print one summary table per thread (summary formats only)',
      ).conflicts('byProcess'),
    )
    .option(
      '--by-process',
      'print one summary table per process (summary formats only)',
    )
    .action(reportAction);
}

async function reportAction(flags: ReportFlags): Promise<void> {
  const perTable = flags.byThread
    ? '--by-thread'
    : flags.byProcess
      ? '--by-process'
      : undefined;
  if (perTable !== undefined && flags.format !== 'summary') {
    throw new InvalidArgumentError(
      `${perTable} prints summary tables, so it cannot be combined with --format ${flags.format}`,
    );
  }
  const { stdout, stderr } = process;
  const recording = await readRecording(flags.input);
  for (const warning of recording.warnings) {
    stderr.write(`rbprof: warning: ${warning}\n`);
  }

  const states: ThreadState[] = flags.idle
    ? ['running', 'waiting_gvl', 'blocked']
    : ['running'];
  const tableOptions = {
    states,
    ...(flags.top === undefined ? {} : { top: flags.top }),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
  };
  const output = flags.byThread
    ? formatByThread(recording.profile, tableOptions)
    : flags.byProcess
      ? formatByProcess(recording.profile, tableOptions)
      : renderProfile(recording.profile, flags.format, {
        states,
        ...(flags.top === undefined ? {} : { top: flags.top }),
        ...(flags.threads === undefined ? {} : { threads: flags.threads }),
      });
  if (flags.file !== undefined) {
    replaceFile(flags.file, output);
  } else {
    if (typeof output !== 'string' && stdout.isTTY) {
      throw new InvalidArgumentError(
        `the ${flags.format} format is ${describeBinary(output)}, which a ` +
          'terminal cannot show; pass --file PATH or redirect stdout to a file',
      );
    }
    stdout.write(output);
  }

  stderr.write(describeEnd(recording.profile));
  if (flags.file !== undefined) {
    stderr.write(`Profile: ${flags.file}\n`);
  }
}

function describeBinary(output: Buffer): string {
  const gzip = output.length >= 2 && output[0] === 0x1f && output[1] === 0x8b;
  return gzip ? 'gzip-compressed binary data' : 'binary data';
}
