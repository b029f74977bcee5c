// The package as a consumer installs it: `npm pack` output unpacked into
// node_modules/rbprof of a scratch project, which compiles the programs
// in test/consumer against the published index.d.ts and loads the
// library from CommonJS and ESM.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { ROOT } from './helpers/processes';

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const CONSUMER_SOURCES = path.join(ROOT, 'test', 'consumer');

/** The export names that both module systems must see. */
const EXPORTS = [
  'FileAccessError',
  'formatInfo',
  'formatSnapshot',
  'formatSummary',
  'InvalidArgumentError',
  'InvalidCoreError',
  'InvalidRecordingError',
  'isProfileFormat',
  'NoSuchProcessError',
  'NotRubyError',
  'PermissionDeniedError',
  'ProcessExitedError',
  'Profile',
  'ProfileBuilder',
  'PROFILE_FORMATS',
  'RbprofError',
  'readRecording',
  'record',
  'renderProfile',
  'SamplingFailedError',
  'shellStatus',
  'snapshot',
  'supportedVersions',
  'UnsupportedVersionError',
  'VmUnreadableError',
  'writeRawRecording',
].sort();

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  /** stdout and stderr, for failure messages. */
  readonly output: string;
}

function run(command: string, args: string[], cwd: string): Result {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.error !== undefined) {
    throw result.error;
  }
  return {
    status: result.status,
    stdout: result.stdout,
    output: result.stdout + result.stderr,
  };
}

/**
 * Packs the package and unpacks it into a scratch project, next to the
 * consumer programs. Returns the project's folder.
 */
function installPacked(): string {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-consumer-'));

  // --ignore-scripts, because `prepare` would rebuild the package, which
  // the test run has already built.
  const packed = run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', project],
    ROOT,
  );
  if (packed.status !== 0) {
    throw new Error(`npm pack failed:\n${packed.output}`);
  }
  const [{ filename }] = JSON.parse(packed.stdout) as Array<{
    filename: string;
  }>;

  const installed = path.join(project, 'node_modules', 'rbprof');
  fs.mkdirSync(installed, { recursive: true });
  const unpacked = run(
    'tar',
    [
      '-xzf',
      path.join(project, filename),
      '-C',
      installed,
      '--strip-components=1',
    ],
    project,
  );
  if (unpacked.status !== 0) {
    throw new Error(`unpacking ${filename} failed:\n${unpacked.output}`);
  }

  // The Node types, as a consumer's own devDependency would give them.
  fs.symlinkSync(
    path.join(ROOT, 'node_modules', '@types'),
    path.join(project, 'node_modules', '@types'),
  );
  fs.writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true }),
  );
  for (const name of fs.readdirSync(CONSUMER_SOURCES)) {
    fs.copyFileSync(
      path.join(CONSUMER_SOURCES, name),
      path.join(project, name),
    );
  }
  return project;
}

let project: string;

test.before(() => {
  project = installPacked();
});

test.after.always(() => {
  if (project !== undefined) {
    fs.rmSync(project, { recursive: true, force: true });
  }
});

/**
 * Compiles `files` of the scratch project with `tsc --strict --noEmit`
 * and the given options, through a tsconfig file of its own named after
 * `name`.
 */
function compile(
  name: string,
  files: string[],
  compilerOptions: Record<string, unknown>,
): Result {
  const config = `tsconfig.${name}.json`;
  fs.writeFileSync(
    path.join(project, config),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022'],
        types: ['node'],
        ...compilerOptions,
      },
      files,
    }),
  );
  return run(
    process.execPath,
    [TSC, '--strict', '--noEmit', '-p', config],
    project,
  );
}

const CONSUMERS = ['consumer.ts', 'esm-consumer.mts'];

test('packed package has its types', (t) => {
  const installed = path.join(project, 'node_modules', 'rbprof');
  for (const file of ['index.d.ts', 'dist/index.js', 'package.json']) {
    t.true(fs.existsSync(path.join(installed, file)), file);
  }
});

test('consumer compiles with node16 resolution', (t) => {
  const result = compile('node16', CONSUMERS, {
    module: 'node16',
    moduleResolution: 'node16',
  });
  t.is(result.status, 0, result.output);
});

test('consumer compiles with bundler resolution', (t) => {
  const result = compile('bundler', CONSUMERS, {
    module: 'esnext',
    moduleResolution: 'bundler',
  });
  t.is(result.status, 0, result.output);
});

test('type errors in consumer are reported', (t) => {
  const broken = path.join(project, 'broken.ts');
  fs.writeFileSync(
    broken,
    "import { record } from 'rbprof';\nvoid record({ pid: 1, durationMs: 10 });\n",
  );
  t.teardown(() => fs.rmSync(broken, { force: true }));
  const result = compile('broken', ['broken.ts'], { module: 'node16' });
  t.is(result.status, 2);
  t.regex(result.output, /durationMs/);
});

test('installed package loads from CommonJS', (t) => {
  const script =
    "const rbprof = require('rbprof');" +
    'console.log(JSON.stringify(Object.keys(rbprof).sort()));';
  const result = run(process.execPath, ['-e', script], project);
  t.is(result.status, 0, result.output);
  t.deepEqual(JSON.parse(result.stdout), EXPORTS);
});

test('installed package loads from ESM', (t) => {
  const script =
    `import { ${EXPORTS.join(', ')} } from 'rbprof';` +
    `const named = { ${EXPORTS.join(', ')} };` +
    'const missing = Object.keys(named).filter((k) => named[k] === undefined);' +
    'console.log(JSON.stringify(missing));';
  const result = run(
    process.execPath,
    ['--input-type=module', '-e', script],
    project,
  );
  t.is(result.status, 0, result.output);
  t.deepEqual(JSON.parse(result.stdout), []);
});
