import { reportError } from './errors';
import { createProgram } from './index';

/**
 * Runs the CLI with `argv` as in `process.argv` and returns the exit code.
 * Every error of every command ends here.
 */
export async function run(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    return reportError(error, process.stderr);
  }
}
