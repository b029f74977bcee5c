// Paths and writes of the CLI's output files: the cache folder, the names
// of files in it, and a write that readers never see half done.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { FileAccessError } from '../index';
import { describeError } from '../system-errors';

/** A user and group to give created files to. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** The folder of profiles and raw recordings written without a path. */
export interface CacheFolder {
  readonly path: string;
  /** Set under sudo: the invoking user, who gets the files. */
  readonly owner?: Owner;
}

/**
 * Returns `$XDG_CACHE_HOME/rbprof`, or `~/.cache/rbprof`. Under sudo, the
 * home folder is the invoking user's (from `SUDO_USER` and /etc/passwd),
 * and the files go to that user, who started the profile and reads it.
 * When that home folder does not exist, as for `nobody`, the folder is
 * root's.
 */
export function cacheFolder(env: NodeJS.ProcessEnv = process.env): CacheFolder {
  const owner = sudoOwner(env);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && path.isAbsolute(xdg)) {
    return withOwner(path.join(xdg, 'rbprof'), owner);
  }
  const sudoHome = owner === undefined ? undefined : passwdHome(env.SUDO_USER!);
  if (sudoHome !== undefined && isFolder(sudoHome)) {
    return withOwner(path.join(sudoHome, '.cache', 'rbprof'), owner);
  }
  return { path: path.join(os.homedir(), '.cache', 'rbprof') };
}

function isFolder(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

function withOwner(folder: string, owner: Owner | undefined): CacheFolder {
  return owner === undefined ? { path: folder } : { path: folder, owner };
}

/** Returns the user that ran `sudo rbprof`, or undefined when rbprof
 * does not run as root through sudo. */
function sudoOwner(env: NodeJS.ProcessEnv): Owner | undefined {
  if (process.getuid?.() !== 0 || env.SUDO_USER === undefined) {
    return undefined;
  }
  const uid = Number(env.SUDO_UID);
  const gid = Number(env.SUDO_GID);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uid === 0) {
    return undefined;
  }
  return { uid, gid };
}

/** Returns the home folder of `user` from /etc/passwd, if listed there. */
function passwdHome(user: string): string | undefined {
  let passwd: string;
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === user && fields.length >= 7 && fields[5] !== '') {
      return fields[5];
    }
  }
  return undefined;
}

/** The file name extension of the raw recordings in the cache folder. */
export const RAW_EXTENSION = 'raw.jsonl';

/**
 * Returns the file name without extension of the outputs of one
 * recording, such as `rbprof-2026-12-04T16-05-03-1234` for process 1234,
 * in local time.
 */
export function outputStem(date: Date, pid: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  const time = `${two(date.getHours())}-${two(date.getMinutes())}-${two(date.getSeconds())}`;
  return `rbprof-${day}T${time}-${pid}`;
}

/**
 * Creates the cache folder and its missing parents. Folders that this
 * call creates go to the folder's owner. Throws a `FileAccessError`.
 */
export function createCacheFolder(folder: CacheFolder): void {
  const missing: string[] = [];
  for (
    let dir = folder.path;
    !fs.existsSync(dir) && path.dirname(dir) !== dir;
    dir = path.dirname(dir)
  ) {
    missing.unshift(dir);
  }
  try {
    // One level at a time, because a recursive mkdir reports ENOENT where
    // the cause is EROFS or EACCES.
    for (const dir of missing) {
      fs.mkdirSync(dir);
      if (folder.owner !== undefined) {
        fs.chownSync(dir, folder.owner.uid, folder.owner.gid);
      }
    }
  } catch (error) {
    throw new FileAccessError(
      `cannot create the folder ${folder.path}: ${describeError(error)}`,
      folder.path,
      { cause: error },
    );
  }
}

/**
 * Throws a `FileAccessError` when a file cannot be created in the folder
 * of `file`, such as on a read-only file system. As root, a folder
 * without write permission passes, because root may write there anyway.
 */
export function checkWritableFolder(file: string): void {
  const folder = path.dirname(path.resolve(file));
  try {
    fs.accessSync(folder, fs.constants.W_OK);
  } catch (error) {
    throw new FileAccessError(
      `cannot write to the folder ${folder}: ${describeError(error)}`,
      file,
      { cause: error },
    );
  }
}

/**
 * Writes `data` to a temporary file next to `file` and renames it over
 * `file`, so a reader sees the old file or the new one, never a part.
 * Throws a `FileAccessError`.
 */
export function replaceFile(
  file: string,
  data: string | Buffer,
  owner?: Owner,
): void {
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.tmp`,
  );
  try {
    fs.writeFileSync(temporary, data, { mode: 0o644 });
    if (owner !== undefined) {
      fs.chownSync(temporary, owner.uid, owner.gid);
    }
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw new FileAccessError(
      `cannot write ${file}: ${describeError(error)}`,
      file,
      { cause: error },
    );
  }
}
