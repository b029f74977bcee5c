// The rbprof command: registers one subcommand per file of this folder.

import { Command } from 'commander';

import { recordCommand } from './record';
import { reportCommand } from './report';
import { sidecarCommand } from './sidecar';
import { snapshotCommand } from './snapshot';
import { topCommand } from './top';
import { programAction } from './versions';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function createProgram(): Command {
  const program = new Command('rbprof')
    .description('Sampling profiler for running Ruby (MRI) processes.')
    .version(version)
    .exitOverride()
    .configureOutput({
      outputError: (message, write) =>
        write(`rbprof: ${message.replace(/^error: /, '')}`),
    })
    .showHelpAfterError('Run `rbprof --help` to list the commands.')
    .option(
      '--supported-versions',
      'list the Ruby versions rbprof can read, then exit',
    );

  for (const command of [
    recordCommand(),
    reportCommand(),
    sidecarCommand(),
    snapshotCommand(),
    topCommand(),
  ]) {
    program.addCommand(
      command
        .copyInheritedSettings(program)
        .showHelpAfterError(
          `Run \`rbprof ${command.name()} --help\` to list the options.`,
        ),
    );
  }

  // Set after the subcommands copied the settings, so that only the
  // program itself takes stray words and options, which its action reports
  // as an unknown command or option.
  return program
    .allowExcessArguments(true)
    .allowUnknownOption(true)
    .action(programAction);
}
