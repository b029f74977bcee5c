// Messages of the errors that Node's file system calls throw, shared by
// the library and the CLI.

/**
 * Returns the message of an error. For a failed system call, that is the
 * code and its description, such as `EROFS: read-only file system`,
 * without the call and path that Node appends, since the caller names
 * the file.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (code === undefined || syscall === undefined) {
    return error.message;
  }
  return error.message.replace(new RegExp(`, ${syscall} .*$`), '');
}
