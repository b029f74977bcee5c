// The single executable (dist-sea/rbprof) in a root file system that contains
// only it, Ruby, and the shared libraries the two need: no Node, no npm
// packages, no addon file. Ruby runs as pid 1 of its own PID namespace, as
// in a container, and rbprof joins that namespace and root with nsenter, as
// `kubectl exec` or `docker exec` would.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import {
  buildSea,
  missingNamespacePrerequisite,
  populateRoot,
  runCommand,
  SEA_BINARY,
  startInPidNamespace,
  type NamespacedWorkload,
} from './helpers/namespaces';
import { parseSummary, ROOT } from './helpers/processes';

const ADDON = path.join(ROOT, 'crates/rbprof-node/rbprof.linux-x64-gnu.node');
/** Debian's Ruby, whose files the root gets at the same paths. */
const DEBIAN_RUBY = '/usr/bin/ruby';
const { version } = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'),
) as { version: string };

const missing = missingNamespacePrerequisite();
const chrootTest = missing === undefined ? test.serial : test.serial.skip;
if (missing !== undefined) {
  console.warn(`sea.test: skipping the chroot tests: ${missing}`);
}

let root = '';

test.before(() => {
  buildSea();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-sea-root-'));
  populateRoot(root, {
    files: [DEBIAN_RUBY],
    librariesOf: [SEA_BINARY, ADDON],
  });
  fs.copyFileSync(SEA_BINARY, path.join(root, 'rbprof'));
  fs.chmodSync(path.join(root, 'rbprof'), 0o755);
  fs.mkdirSync(path.join(root, 'app'));
  fs.copyFileSync(
    path.join(ROOT, 'test/workloads/known_split.rb'),
    path.join(root, 'app/known_split.rb'),
  );
});

test.after.always(() => {
  if (root !== '') {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** Lists every file and link under `directory`, relative to it. */
function listTree(directory: string): string[] {
  return fs
    .readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .map((entry) => entry.split(path.sep).join('/'));
}

/** Runs the executable inside the workload's PID namespace, mount
 * namespace and root. */
function runInside(
  t: ExecutionContext,
  workload: NamespacedWorkload,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
) {
  const nsenter = [
    '-t',
    String(workload.hostPid),
    '--pid',
    '--mount',
    '--root',
    '--wd',
  ];
  return runCommand(t, 'nsenter', [...nsenter, '/rbprof', ...args], {
    env: { PATH: '/usr/bin:/bin', HOME: '/tmp', ...env },
  });
}

test('sea is one executable file', (t) => {
  const stat = fs.statSync(SEA_BINARY);
  t.true(stat.isFile());
  t.not(stat.mode & 0o111, 0, 'the executable bits are set');
});

chrootTest('root has no node', (t) => {
  const names = listTree(root);
  t.true(names.includes('rbprof'), names.join('\n'));
  t.true(names.includes('usr/bin/ruby'), names.join('\n'));
  const nodeFiles = names.filter((name) =>
    /(^|\/)(node|nodejs|libnode[^/]*|[^/]*\.node|node_modules)$/.test(name),
  );
  t.deepEqual(nodeFiles, []);
});

chrootTest('sea prints its version', async (t) => {
  const result = await runCommand(t, 'chroot', [root, '/rbprof', '--version']);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, `${version}\n`);
});

chrootTest('sea records ruby in the root', async (t) => {
  const workload = await startInPidNamespace(t, {
    root,
    rubyPath: DEBIAN_RUBY,
    script: '/app/known_split.rb',
  });
  t.is(workload.pid, 1);

  const result = await runInside(t, workload, [
    'record',
    '--pid',
    '1',
    '--duration',
    '2',
    '--no-raw',
  ]);
  t.is(result.code, 0, result.stderr);
  const rows = parseSummary(result.stdout);
  const alpha = rows.find((row) => row.name === 'Object#alpha');
  t.truthy(alpha, result.stdout);
  t.is(alpha?.path, '/app/known_split.rb');
  // About 200 samples in 2 s: alpha's 60 % share has a standard deviation
  // near 3.5 points, so 40 is far outside chance.
  t.true((alpha?.total ?? 0) >= 40, result.stdout);

  // The addon file is removed right after it was loaded.
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), []);
});

chrootTest('sea exits 3 for an unknown pid', async (t) => {
  const workload = await startInPidNamespace(t, {
    root,
    rubyPath: DEBIAN_RUBY,
    script: '/app/known_split.rb',
  });
  const result = await runInside(t, workload, [
    'record',
    '--pid',
    '4242',
    '--duration',
    '1',
    '--no-raw',
  ]);
  t.is(result.code, 3, result.stderr);
  t.regex(result.stderr, /^rbprof: no process with pid 4242$/m);
});

chrootTest('sea reports a missing TMPDIR', async (t) => {
  const workload = await startInPidNamespace(t, {
    root,
    rubyPath: DEBIAN_RUBY,
    script: '/app/known_split.rb',
  });
  const result = await runInside(
    t,
    workload,
    ['record', '--pid', '1', '--duration', '1', '--no-raw'],
    { TMPDIR: '/missing' },
  );
  t.is(result.code, 8, result.stderr);
  t.regex(
    result.stderr,
    /^rbprof: cannot create a directory for the native addon in \/missing: /m,
  );
  t.regex(result.stderr, /Set TMPDIR to a writable directory/);
});
