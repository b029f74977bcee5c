// The container image that scripts/build-image.sh builds without a
// container engine. The tests unpack it into an OCI bundle with umoci and
// run it with crun beside a Ruby "application" in one PID namespace, the
// way a Kubernetes pod with shareProcessNamespace runs a sidecar.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import {
  buildSea,
  missingNamespacePrerequisite,
  runCommand,
  SEA_BINARY,
  startInPidNamespace,
  type NamespacedWorkload,
} from './helpers/namespaces';
import { parseSummary, ROOT } from './helpers/processes';

const TAG = 'test';
const BUILD_SCRIPT = path.join(ROOT, 'scripts/build-image.sh');
const WORKLOAD = path.join(ROOT, 'test/workloads/known_split.rb');

const missing = missingNamespacePrerequisite([
  'mmdebstrap',
  'umoci',
  'crun',
  'mountpoint',
]);
const imageTest = missing === undefined ? test.serial : test.serial.skip;
if (missing !== undefined) {
  console.warn(`image.test: skipping the image tests: ${missing}`);
}

let work = '';
let layout = '';
let bundle = '';
let buildLog = '';
let containerCount = 0;

test.before(() => {
  if (missing !== undefined) {
    return;
  }
  buildSea();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-image-'));
  layout = path.join(work, 'oci');
  // The root file system is cached in ~/.cache/rbprof/image, so only the
  // first run on a machine runs mmdebstrap and downloads packages.
  const started = Date.now();
  const build = spawnSync(
    'bash',
    [BUILD_SCRIPT, '--output', layout, '--tag', TAG],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (build.status !== 0) {
    throw new Error(
      `build-image.sh failed (${build.status}):\n${build.stderr}`,
    );
  }
  buildLog = build.stderr;
  console.log(`image.test: built the image in ${Date.now() - started} ms`);
  bundle = path.join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:${TAG}`, bundle]);
});

test.after.always(() => {
  if (work !== '') {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

/** Reads a blob of the layout by its `sha256:…` digest, as JSON. */
function readBlob(digest: string): Record<string, unknown> {
  const [algorithm, hex] = digest.split(':');
  const file = path.join(layout, 'blobs', algorithm, hex);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

interface Manifest {
  config: { digest: string };
  layers: Array<{ digest: string; size: number }>;
}

function readManifest(): Manifest {
  const index = JSON.parse(
    fs.readFileSync(path.join(layout, 'index.json'), 'utf8'),
  ) as {
    manifests: Array<{
      digest: string;
      annotations?: Record<string, string>;
    }>;
  };
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === TAG,
  );
  if (entry === undefined) {
    throw new Error(`no manifest tagged ${TAG} in ${layout}/index.json`);
  }
  return readBlob(entry.digest) as unknown as Manifest;
}

interface RuntimeConfig {
  process: {
    terminal: boolean;
    args: string[];
    env: string[];
    capabilities: Record<string, string[]>;
  };
  linux: { namespaces: Array<{ type: string; path?: string }> };
}

/**
 * Writes a runtime config for one container run: the image's config with
 * `args`, no terminal, the application's PID namespace instead of a new
 * one, the host's network namespace (loopback only is reached), and
 * SYS_PTRACE added to the image's default capabilities when `ptrace` is
 * set. Returns the file's path.
 */
function writeRuntimeConfig(
  app: NamespacedWorkload,
  args: readonly string[],
  options: { ptrace: boolean },
): string {
  const config = JSON.parse(
    fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'),
  ) as RuntimeConfig;
  config.process.terminal = false;
  config.process.args = [...args];
  if (options.ptrace) {
    for (const set of Object.keys(config.process.capabilities)) {
      config.process.capabilities[set].push('CAP_SYS_PTRACE');
    }
  }
  config.linux.namespaces = config.linux.namespaces
    .filter((namespace) => namespace.type !== 'network')
    .map((namespace) =>
      namespace.type === 'pid'
        ? { type: 'pid', path: `/proc/${app.hostPid}/ns/pid` }
        : namespace,
    );
  containerCount += 1;
  const file = path.join(work, `config-${containerCount}.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * Runs one container of the unpacked image with crun. crun 1.8 rejects a
 * hybrid cgroup hierarchy whose cgroup v2 part has controllers enabled, as
 * some hosts mount it. The container needs no cgroup, so crun runs with
 * its cgroup manager disabled, in a private mount namespace where such a
 * cgroup v2 mount is covered by an empty tmpfs.
 */
function runContainer(t: ExecutionContext, config: string) {
  const id = `rbprof-image-test-${process.pid}-${containerCount}`;
  const script = [
    'set -e',
    'if mountpoint -q /sys/fs/cgroup/unified; then',
    '  mount -t tmpfs tmpfs /sys/fs/cgroup/unified',
    'fi',
    `exec crun --cgroup-manager=disabled run --config "$1" --bundle "$2" "$3"`,
  ].join('\n');
  t.teardown(() => {
    try {
      execFileSync('crun', ['delete', '--force', id], { stdio: 'ignore' });
    } catch {
      // crun run removes the container when its process ends.
    }
  });
  return runCommand(t, 'unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    script,
    'sh',
    config,
    bundle,
    id,
  ]);
}

imageTest('image config sets entrypoint and port', (t) => {
  const manifest = readManifest();
  t.is(manifest.layers.length, 2, 'a Debian layer and a layer for /rbprof');
  const image = readBlob(manifest.config.digest) as {
    config: {
      Entrypoint: string[];
      Cmd: string[];
      ExposedPorts: Record<string, unknown>;
      Labels: Record<string, string>;
    };
  };
  t.deepEqual(image.config.Entrypoint, ['/rbprof']);
  t.deepEqual(image.config.Cmd, ['sidecar']);
  t.deepEqual(Object.keys(image.config.ExposedPorts), ['6060/tcp']);
  t.is(image.config.Labels['org.opencontainers.image.title'], 'rbprof');
  t.is(image.config.Labels['org.opencontainers.image.licenses'], 'MIT');
});

imageTest('build prints the compressed size', (t) => {
  const sizes = readManifest().layers.map((layer) => layer.size);
  for (const [i, size] of sizes.entries()) {
    t.true(
      buildLog.includes(`layer ${i + 1}: ${size} bytes compressed`),
      buildLog,
    );
  }
  const total = sizes.reduce((sum, size) => sum + size, 0);
  t.regex(
    buildLog,
    new RegExp(`2 layers, ${total} bytes \\(\\d+ MiB\\) compressed`),
  );
});

imageTest('image contains rbprof and no node', (t) => {
  const rootfs = path.join(bundle, 'rootfs');
  const rbprof = fs.statSync(path.join(rootfs, 'rbprof'));
  t.is(rbprof.size, fs.statSync(SEA_BINARY).size);
  t.is(rbprof.mode & 0o777, 0o755);
  for (const name of ['usr/bin/node', 'usr/bin/nodejs', 'usr/local/bin/node']) {
    t.false(fs.existsSync(path.join(rootfs, name)), name);
  }
  t.true(
    fs.existsSync(path.join(rootfs, 'usr/lib/x86_64-linux-gnu/libstdc++.so.6')),
  );
});

imageTest('container records the app beside it', async (t) => {
  const app = await startInPidNamespace(t, { script: WORKLOAD });
  const config = writeRuntimeConfig(
    app,
    [
      '/rbprof',
      'record',
      '--pid',
      String(app.pid),
      '--duration',
      '2',
      '--no-raw',
    ],
    { ptrace: true },
  );
  const result = await runContainer(t, config);
  t.is(result.code, 0, result.stderr);
  const rows = parseSummary(result.stdout);
  const alpha = rows.find((row) => row.name === 'Object#alpha');
  t.truthy(alpha, result.stdout);
  t.is(alpha?.path, WORKLOAD);
  // About 200 samples at alpha's 60 % share: 40 is far outside chance.
  t.true((alpha?.total ?? 0) >= 40, result.stdout);
});

imageTest('container without SYS_PTRACE is denied', async (t) => {
  const app = await startInPidNamespace(t, { script: WORKLOAD });
  const config = writeRuntimeConfig(
    app,
    [
      '/rbprof',
      'record',
      '--pid',
      String(app.pid),
      '--duration',
      '1',
      '--no-raw',
    ],
    { ptrace: false },
  );
  const result = await runContainer(t, config);
  t.is(result.code, 6, result.stderr);
  t.regex(result.stderr, /^rbprof: permission denied /m);
  t.regex(result.stderr, /SYS_PTRACE/);
});
