import { Command, Option } from 'commander';

import { formatSnapshot, snapshot, type SnapshotOptions } from '../index';
import { parsePid, parseVersion } from './options';

interface SnapshotFlags {
  pid?: number;
  pause?: boolean;
  core?: string;
  binary?: string;
  json?: boolean;
  forceVersion?: string;
}

export function snapshotCommand(): Command {
  return new Command('snapshot')
    .description(
      'Print the current stack of every Ruby thread of a running process ' +
        'or of an ELF core file (as `gcore PID` writes it).',
    )
    .addOption(
      new Option('--pid <pid>', 'process id of the Ruby process')
        .argParser(parsePid)
        .conflicts('core'),
    )
    .option('--core <file>', 'ELF core file of a Ruby process')
    .addOption(
      new Option(
        '--binary <path>',
        'with --core: the libruby or ruby executable to read in place of ' +
          'the one the core records',
      ).conflicts('pid'),
    )
    .addOption(
      new Option(
        '--pause',
        "with --pid: stop the process's threads while their stacks are " +
          'read, so none tears (needs ptrace)',
      ).conflicts('core'),
    )
    .option('--json', 'print the snapshot as JSON')
    .option(
      '--force-version <version>',
      'read the target with the struct layouts of this Ruby version (X.Y.Z)',
      parseVersion,
    )
    .action(snapshotAction);
}

async function snapshotAction(
  this: Command,
  flags: SnapshotFlags,
): Promise<void> {
  const forceVersion =
    flags.forceVersion === undefined
      ? {}
      : { forceVersion: flags.forceVersion };
  let options: SnapshotOptions;
  if (flags.core !== undefined) {
    const binary = flags.binary === undefined ? {} : { binary: flags.binary };
    options = { core: flags.core, ...binary, ...forceVersion };
  } else if (flags.binary !== undefined) {
    this.error('error: --binary requires --core');
  } else if (flags.pid !== undefined) {
    const pause = flags.pause === true ? { pause: true } : {};
    options = { pid: flags.pid, ...forceVersion, ...pause };
  } else {
    this.error('error: one of --pid or --core is required');
  }

  const result = await snapshot(options);
  for (const warning of result.warnings) {
    process.stderr.write(`rbprof: warning: ${warning}\n`);
  }
  process.stdout.write(
    flags.json
      ? `${JSON.stringify(result, null, 2)}\n`
      : formatSnapshot(result),
  );
}
