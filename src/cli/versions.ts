import type { Command } from 'commander';

import { supportedVersions } from '../index';

/**
 * Runs `rbprof` without a command. With `--supported-versions`, prints one
 * range of Ruby releases per line, and otherwise reports the missing or
 * unknown command.
 */
export function programAction(this: Command): void {
  const stray = this.args[0];
  if (stray?.startsWith('-')) {
    this.error(`unknown option '${stray}'`);
  }
  if (stray !== undefined) {
    this.error(`unknown command '${stray}'`);
  }
  if (!this.opts<{ supportedVersions?: boolean }>().supportedVersions) {
    this.help({ error: true });
  }
  for (const range of supportedVersions()) {
    const note = range.verified ? '' : ' (unverified: never profiled live)';
    process.stdout.write(`${range.from} - ${range.through}${note}\n`);
  }
}
