// Ruby workloads in their own PID namespace, and the single executable
// that the container tests run beside them.

import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import type { ExecutionContext } from 'ava';

import { ROOT, RUBY, spawnGuarded } from './processes';

/** The executable that `npm run build:sea` writes. */
export const SEA_BINARY = path.join(ROOT, 'dist-sea', 'rbprof');

/** How long a workload may take to print its `ready` line. */
const READY_TIMEOUT_MS = 30_000;

/**
 * Returns why the namespace tests cannot run here, or `undefined`. `tools`
 * are commands they need beside unshare, nsenter and chroot. Throws instead
 * when RBPROF_REQUIRE_CONTAINER_TOOLS=1 (as in CI), so that a missing tool
 * fails the tests rather than skipping them.
 */
export function missingNamespacePrerequisite(
  tools: readonly string[] = [],
): string | undefined {
  let missing: string | undefined;
  if (process.getuid?.() !== 0) {
    missing = 'needs root for chroot, mounts and PID namespaces';
  } else {
    for (const tool of ['unshare', 'nsenter', 'chroot', ...tools]) {
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      } catch {
        missing = `${tool} is not installed`;
        break;
      }
    }
  }
  if (
    missing !== undefined &&
    process.env.RBPROF_REQUIRE_CONTAINER_TOOLS === '1'
  ) {
    throw new Error(`${missing}, and RBPROF_REQUIRE_CONTAINER_TOOLS=1 is set`);
  }
  return missing;
}

/** Builds dist-sea/rbprof from dist/ and the addon, which `npm run build`
 * must have built. Throws with the build's output when it fails. */
export function buildSea(): void {
  execFileSync(process.execPath, [path.join(ROOT, 'tools/sea/build.js')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface NamespacedWorkload {
  /** The workload's pid in its own namespace (1: it is the init process). */
  readonly pid: number;
  /** The same process's pid on the host. */
  readonly hostPid: number;
  readonly child: ChildProcess;
}

/**
 * Starts a Ruby script as pid 1 of a new PID namespace with its own /proc,
 * as a container runtime starts an application, and waits for its
 * `ready PID` line. With `root`, Ruby runs chrooted there, and `rubyPath`
 * and `script` are paths inside it, and the namespace's /proc is mounted on
 * `root`/proc.
 */
export async function startInPidNamespace(
  t: ExecutionContext,
  options: {
    script: string;
    args?: readonly string[];
    root?: string;
    rubyPath?: string;
    /** Run Ruby as this uid and gid, with no capabilities, as a
     * container with `runAsUser` does. Not with `root`. The user must be
     * able to read `script`. */
    user?: number;
  },
): Promise<NamespacedWorkload> {
  const ruby = options.rubyPath ?? RUBY;
  const command = [
    ruby,
    '--disable-gems',
    options.script,
    ...(options.args ?? []),
  ];
  const unshareArgs = ['--pid', '--fork', '--kill-child'];
  if (options.root === undefined) {
    unshareArgs.push('--mount-proc');
    if (options.user !== undefined) {
      const id = String(options.user);
      command.unshift(
        'setpriv',
        '--reuid',
        id,
        '--regid',
        id,
        '--clear-groups',
        '--inh-caps=-all',
      );
    }
  } else if (options.user !== undefined) {
    throw new Error('startInPidNamespace takes either root or user');
  } else {
    unshareArgs.push(`--mount-proc=${path.join(options.root, 'proc')}`);
    command.unshift('chroot', options.root);
  }
  // The root directory as working directory, which every user may enter.
  const child = spawnGuarded(t, 'unshare', [...unshareArgs, ...command], {
    cwd: '/',
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`no ready line in ${READY_TIMEOUT_MS} ms: ${stderr}`)),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`unshare exited (code ${code}, signal ${signal}): ${stderr}`),
      );
    });
  });

  // unshare forks once; its only child became the namespace's pid 1 and
  // then executed chroot and Ruby.
  const children = fs
    .readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
    .trim()
    .split(/\s+/);
  if (children.length !== 1) {
    throw new Error(`unshare ${child.pid} has children ${children.join(', ')}`);
  }
  const hostPid = Number(children[0]);
  // Killing unshare does not reach a workload that changed its user,
  // because a change of credentials clears the parent-death signal that
  // --kill-child uses. Killing the namespace's init ends every process in
  // the namespace.
  t.teardown(() => {
    try {
      process.kill(hostPid, 'SIGKILL');
    } catch {
      // It has already exited.
    }
  });
  return { pid, hostPid, child };
}

/** Copies `file` into `root` at the same path, following symbolic links. */
function copyInto(root: string, file: string): void {
  const target = path.join(root, file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(fs.realpathSync(file), target);
  fs.chmodSync(target, fs.statSync(file).mode & 0o7777);
}

/** Returns the shared libraries, including the dynamic loader, that `ldd`
 * lists for `binary`. */
export function sharedLibraries(binary: string): string[] {
  const output = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libraries = [];
  for (const line of output.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
    // "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file.
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match !== null) {
      libraries.push(match[1]);
    }
  }
  return libraries;
}

/**
 * Fills `root` with `files` and the shared libraries that they and
 * `librariesOf` need, at their paths on this system, and creates an empty
 * /proc and a world-writable /tmp.
 */
export function populateRoot(
  root: string,
  options: { files: readonly string[]; librariesOf?: readonly string[] },
): void {
  const all = new Set<string>(options.files);
  for (const binary of [...options.files, ...(options.librariesOf ?? [])]) {
    for (const library of sharedLibraries(binary)) {
      all.add(library);
    }
  }
  for (const file of all) {
    copyInto(root, file);
  }
  fs.mkdirSync(path.join(root, 'proc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
}

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with only `env` as its environment and collects its
 * output; kills it after `timeoutMs`. */
export function runCommand(
  t: ExecutionContext,
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const child = spawnGuarded(t, command, args, {
    env: options.env ?? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  let stdout = '';
  let stderr = '';
  child
    .stdout!.setEncoding('utf8')
    .on('data', (chunk: string) => (stdout += chunk));
  child
    .stderr!.setEncoding('utf8')
    .on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(
    () => child.kill('SIGKILL'),
    options.timeoutMs ?? 60_000,
  );
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
