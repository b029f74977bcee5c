// The container image that scripts/build-image.sh builds without a
// container engine. The tests unpack it into an OCI bundle with umoci and
// run it with crun beside a Ruby "application" in one PID namespace, the
// way a Kubernetes pod with shareProcessNamespace runs a sidecar.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
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
import { loadDeployment, sidecarContainer } from './helpers/manifests';
import { decodePprof } from './helpers/pprof';
import { parseSummary, ROOT, spawnGuarded } from './helpers/processes';
import { HOT_PATH, request, SIDECAR_APP } from './helpers/sidecar';

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

/** The parts of an OCI runtime config that the tests change. */
interface RuntimeConfig {
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    capabilities: Record<string, string[]>;
    noNewPrivileges?: boolean;
  };
  root: { path: string; readonly?: boolean };
  mounts: Array<{
    destination: string;
    type: string;
    source: string;
    options?: string[];
  }>;
  linux: { namespaces: Array<{ type: string; path?: string }> };
}

/**
 * Writes a runtime config for one container run and returns its path. It
 * is the image's config with `args` and no terminal. The container joins
 * the application's PID namespace and the host's network namespace, where
 * the tests use only loopback. With `ptrace`, SYS_PTRACE is added to the
 * image's default capabilities. `customize` changes the config last.
 */
function writeRuntimeConfig(
  app: NamespacedWorkload,
  args: readonly string[],
  options: { ptrace: boolean; customize?: (config: RuntimeConfig) => void },
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
  options.customize?.(config);
  containerCount += 1;
  const file = path.join(work, `config-${containerCount}.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * Returns the unshare arguments that run crun with `crunArgs`. crun 1.8
 * rejects a hybrid cgroup hierarchy whose cgroup v2 part has controllers
 * enabled, as some hosts mount it. The containers need no cgroup, so crun
 * runs with its cgroup manager disabled, in a private mount namespace
 * where such a cgroup v2 mount is covered by an empty tmpfs.
 */
function crunCommand(crunArgs: readonly string[]): string[] {
  const script = [
    'set -e',
    'if mountpoint -q /sys/fs/cgroup/unified; then',
    '  mount -t tmpfs tmpfs /sys/fs/cgroup/unified',
    'fi',
    'exec crun --cgroup-manager=disabled "$@"',
  ].join('\n');
  return [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    script,
    'sh',
    ...crunArgs,
  ];
}

/** Returns the arguments of `crun run` for a new container of the
 * unpacked image, with its id; the test's teardown deletes it. */
function runArguments(
  t: ExecutionContext,
  config: string,
): { id: string; args: string[] } {
  const id = `rbprof-image-test-${process.pid}-${containerCount}`;
  t.teardown(() => {
    try {
      execFileSync('unshare', crunCommand(['delete', '--force', id]), {
        stdio: 'ignore',
      });
    } catch {
      // crun run already removed the container when its process ended.
    }
  });
  return {
    id,
    args: crunCommand(['run', '--config', config, '--bundle', bundle, id]),
  };
}

/** Runs a container of the unpacked image until its process exits. */
function runContainer(t: ExecutionContext, config: string) {
  return runCommand(t, 'unshare', runArguments(t, config).args);
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

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it responds with status 200, for at most 30 s. */
async function waitForOk(url: string, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await request(url)).status === 200) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    if (exited() || Date.now() > deadline) {
      throw new Error(`${url} did not respond with 200`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

imageTest('container sidecar serves a profile', async (t) => {
  const app = await startInPidNamespace(t, { script: SIDECAR_APP });
  const port = await freePort();
  // The image's command with a loopback address: the container shares
  // the host's network namespace, and only the test connects.
  const config = writeRuntimeConfig(
    app,
    ['/rbprof', 'sidecar', '--listen', `127.0.0.1:${port}`],
    { ptrace: true },
  );
  const { id, args } = runArguments(t, config);
  const container = spawnGuarded(t, 'unshare', args);
  let stderr = '';
  container.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) =>
    container.once('exit', (code) => resolve(code)),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  await waitForOk(`http://127.0.0.1:${port}/healthz`, () => hasExited);
  const response = await request(
    `http://127.0.0.1:${port}/debug/pprof/profile?seconds=2`,
  );
  t.is(response.status, 200, response.body.toString('utf8'));
  const profile = decodePprof(response.body);
  t.true(profile.samples.length > 0, stderr);
  const hot = profile.samples.filter((sample) =>
    sample.functions.includes(HOT_PATH),
  );
  t.true(hot.length > 0, `no sample names ${HOT_PATH}`);

  // SIGTERM through the runtime, as a kubelet stops a container.
  execFileSync('unshare', crunCommand(['kill', id, 'SIGTERM']));
  t.is(await exited, 0, stderr);
  t.regex(stderr, /"msg":"sidecar stopped"/);
});

imageTest('container with the manifest settings records', async (t) => {
  // The users, capabilities, root file system and emptyDir volumes of
  // deploy/kubernetes/ruby-app.yaml, with the application's processes of
  // another user than the sidecar.
  const deployment = await loadDeployment();
  const sidecar = sidecarContainer(deployment)!;
  const application = deployment.spec!.template!.spec!.containers!.find(
    (container) => container !== sidecar,
  )!;
  const appUser = application.securityContext?.runAsUser;
  t.is(typeof appUser, 'number');
  t.not(appUser, 0, 'the application runs as another user than root');
  const security = sidecar.securityContext!;
  const emptyDirs = new Set(
    (deployment.spec!.template!.spec!.volumes ?? [])
      .filter((volume) => volume.emptyDir !== undefined)
      .map((volume) => volume.name),
  );

  // A copy that any user can read, wherever the repository is checked out.
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-workload-'));
  t.teardown(() => fs.rmSync(shared, { recursive: true, force: true }));
  fs.chmodSync(shared, 0o755);
  const script = path.join(shared, path.basename(WORKLOAD));
  fs.copyFileSync(WORKLOAD, script);
  fs.chmodSync(script, 0o644);
  const app = await startInPidNamespace(t, { script, user: appUser });
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
    {
      ptrace: false,
      customize: (runtime) => {
        runtime.process.user = {
          uid: security.runAsUser!,
          gid: security.runAsUser!,
        };
        const kept = (security.capabilities?.drop ?? []).includes('ALL')
          ? []
          : runtime.process.capabilities.bounding;
        const added = (security.capabilities?.add ?? []).map(
          (name) => `CAP_${name}`,
        );
        for (const set of Object.keys(runtime.process.capabilities)) {
          runtime.process.capabilities[set] = [...kept, ...added];
        }
        runtime.process.noNewPrivileges = true;
        runtime.root.readonly = security.readOnlyRootFilesystem === true;
        for (const mount of sidecar.volumeMounts ?? []) {
          if (emptyDirs.has(mount.name)) {
            runtime.mounts.push({
              destination: mount.mountPath!,
              type: 'tmpfs',
              source: 'tmpfs',
              options: ['nosuid', 'nodev', 'mode=1777'],
            });
          }
        }
        for (const variable of sidecar.env ?? []) {
          if (variable.value !== undefined) {
            runtime.process.env.push(`${variable.name}=${variable.value}`);
          }
        }
      },
    },
  );
  const result = await runContainer(t, config);
  t.is(result.code, 0, result.stderr);
  const alpha = parseSummary(result.stdout).find(
    (row) => row.name === 'Object#alpha',
  );
  t.truthy(alpha, result.stdout);
});

test('Dockerfile runtime stage matches the image', (t) => {
  const lines = fs
    .readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages = lines.filter((line) => line.startsWith('FROM '));
  t.true(stages.length >= 2, 'a build stage and a runtime stage');
  const runtime = lines.slice(lines.lastIndexOf(stages[stages.length - 1]));
  t.regex(runtime[0], /^FROM debian:[a-z]+-slim$/);
  t.true(runtime.includes('ENTRYPOINT ["/rbprof"]'), runtime.join('\n'));
  t.true(runtime.includes('CMD ["sidecar"]'), runtime.join('\n'));
  t.true(runtime.includes('EXPOSE 6060'), runtime.join('\n'));
  t.true(
    runtime.includes('COPY --from=build /src/dist-sea/rbprof /rbprof'),
    runtime.join('\n'),
  );

  // Every npm script that the build stage runs exists.
  const { scripts } = JSON.parse(
    fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'),
  ) as { scripts: Record<string, string> };
  const runs = lines.join('\n').matchAll(/npm run ([\w:-]+)/g);
  const names = [...runs].map((match) => match[1]);
  t.deepEqual(names, ['build', 'build:sea']);
  for (const name of names) {
    t.true(name in scripts, `package.json has no script ${name}`);
  }
});
