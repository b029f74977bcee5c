import { reportError } from './errors';
import { createProgram } from './index';

/**
 * Runs the CLI with `argv` as in `process.argv` and returns the exit code.
 * Every error of every command ends here.
 */
export async function run(argv: readonly string[]): Promise<number> {
  ignoreClosedPipes();
  try {
    await createProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    return reportError(error, process.stderr);
  }
}

/** Keeps output piped into a reader that exits early (`| head`) from
 * crashing the CLI. */
function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') {
        throw error;
      }
    });
  }
}
