// The example manifests and scrape configurations in deploy/. Kubernetes
// is not available here, so the tests check what the API server and the
// scrapers would reject, and that the files agree with each other and with
// rbprof sidecar's command line. Each check of the Deployment is also run
// on broken copies, which it must reject.

import fs from 'node:fs';
import path from 'node:path';

import test from 'ava';

import { sidecarCommand, parseListen } from '../dist/cli/sidecar';
import { HEALTH_PATH, PROFILE_PATH } from '../dist/sidecar/http';
import {
  DEPLOY_DIR,
  loadDeployment,
  loadDocuments,
  sidecarContainer,
  yamlFiles,
  type Container,
  type Deployment,
} from './helpers/manifests';

const PARCA_FILE = path.join(DEPLOY_DIR, 'parca', 'parca.yaml');
const ALLOY_FILE = path.join(DEPLOY_DIR, 'alloy', 'config.alloy');

/** A DNS-1123 label: what Kubernetes accepts as a container name. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A DNS-1123 subdomain: what Kubernetes accepts as most object names. */
const DNS_SUBDOMAIN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** An IANA service name, which a container port's name must be: 1 to 15
 * lower-case letters, digits and inner single hyphens, one letter at
 * least. */
function isServiceName(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= 15 &&
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) &&
    /[a-z]/.test(name) &&
    !name.includes('--')
  );
}

/** The Downward API field that each of these variables must come from. */
const FIELD_PATHS: Record<string, string> = {
  POD_NAME: 'metadata.name',
  POD_NAMESPACE: 'metadata.namespace',
};

/**
 * Lists what is wrong with the example Deployment: fields that the API
 * server requires or rejects, and settings that rbprof's sidecar needs.
 * Returns an empty list for a valid one.
 */
function deploymentProblems(deployment: Deployment): string[] {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(message);

  if (deployment.apiVersion !== 'apps/v1') fail('apiVersion is not apps/v1');
  if (deployment.kind !== 'Deployment') fail('kind is not Deployment');
  const name = deployment.metadata?.name ?? '';
  if (!DNS_SUBDOMAIN.test(name))
    fail(`metadata.name ${JSON.stringify(name)} is invalid`);

  const selector = deployment.spec?.selector?.matchLabels ?? {};
  const template = deployment.spec?.template;
  const labels = template?.metadata?.labels ?? {};
  if (Object.keys(selector).length === 0)
    fail('spec.selector.matchLabels is empty');
  for (const [key, value] of Object.entries(selector)) {
    if (labels[key] !== value) {
      fail(`the template's labels do not match the selector's ${key}=${value}`);
    }
  }

  const pod = template?.spec;
  if (pod?.shareProcessNamespace !== true)
    fail('shareProcessNamespace is not true');
  const containers = pod?.containers ?? [];
  if (containers.length < 2)
    fail('the pod needs the application and the sidecar');
  const containerNames = containers.map((container) => container.name ?? '');
  for (const containerName of containerNames) {
    if (!DNS_LABEL.test(containerName))
      fail(`container name ${JSON.stringify(containerName)} is invalid`);
  }
  if (new Set(containerNames).size !== containerNames.length)
    fail('container names are not unique');

  const portNames: string[] = [];
  for (const container of containers) {
    if ((container.image ?? '') === '')
      fail(`container ${container.name} has no image`);
    for (const port of container.ports ?? []) {
      if (port.name !== undefined) {
        portNames.push(port.name);
        if (!isServiceName(port.name))
          fail(
            `port name ${JSON.stringify(port.name)} is not a valid service name`,
          );
      }
      const number = port.containerPort ?? 0;
      if (!(Number.isInteger(number) && number >= 1 && number <= 65535)) {
        fail(
          `container ${container.name} has an invalid containerPort ${number}`,
        );
      }
    }
  }
  if (new Set(portNames).size !== portNames.length)
    fail('port names are not unique in the pod');

  const volumes = new Set((pod?.volumes ?? []).map((volume) => volume.name));
  for (const container of containers) {
    for (const mount of container.volumeMounts ?? []) {
      if (!volumes.has(mount.name))
        fail(`volume mount ${mount.name} names no volume`);
    }
  }

  const sidecar = sidecarContainer(deployment);
  if (sidecar === undefined) {
    fail('no container runs `rbprof sidecar`');
    return problems;
  }
  problems.push(...sidecarProblems(sidecar, containerNames));

  const annotations = template?.metadata?.annotations ?? {};
  if (annotations['profiles.grafana.com/cpu.scrape'] !== 'true') {
    fail('profiles.grafana.com/cpu.scrape is not "true"');
  }
  const annotatedPort = annotations['profiles.grafana.com/cpu.port'];
  const sidecarPorts = (sidecar.ports ?? []).map((port) =>
    String(port.containerPort),
  );
  if (annotatedPort === undefined || !sidecarPorts.includes(annotatedPort)) {
    fail(
      `profiles.grafana.com/cpu.port ${annotatedPort} is not a port of the sidecar`,
    );
  }
  for (const [key, value] of Object.entries(annotations)) {
    if (typeof value !== 'string') fail(`annotation ${key} is not a string`);
  }
  return problems;
}

/** Lists what is wrong with the sidecar container. `containerNames` are
 * the pod's containers, one of which CONTAINER_NAME must name. */
function sidecarProblems(
  sidecar: Container,
  containerNames: string[],
): string[] {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(message);

  const security = sidecar.securityContext;
  if (!(security?.capabilities?.add ?? []).includes('SYS_PTRACE'))
    fail('the sidecar lacks SYS_PTRACE');
  if (security?.runAsUser !== 0) fail('the sidecar does not run as uid 0');

  // Every flag is one that rbprof sidecar has, and --listen serves on a
  // declared port.
  const known = new Set(sidecarCommand().options.map((option) => option.long));
  const args = sidecar.args ?? [];
  for (const arg of args.slice(1)) {
    if (arg.startsWith('--') && !known.has(arg))
      fail(`rbprof sidecar has no flag ${arg}`);
  }
  const listenAt = args.indexOf('--listen');
  const listen = parseListen(
    listenAt >= 0 ? args[listenAt + 1] : '0.0.0.0:6060',
  );
  const ports = sidecar.ports ?? [];
  if (!ports.some((port) => port.containerPort === listen.port)) {
    fail(`the sidecar listens on ${listen.port}, which is not a declared port`);
  }

  for (const [kind, probe] of [
    ['readinessProbe', sidecar.readinessProbe],
    ['livenessProbe', sidecar.livenessProbe],
  ] as const) {
    const target = probe?.httpGet;
    if (target === undefined) {
      fail(`the sidecar has no ${kind}.httpGet`);
      continue;
    }
    if (target.path !== HEALTH_PATH)
      fail(`${kind} path ${target.path} is not ${HEALTH_PATH}`);
    const declared = ports.some((port) =>
      typeof target.port === 'string'
        ? port.name === target.port
        : port.containerPort === target.port,
    );
    if (!declared)
      fail(`${kind} port ${target.port} is not a declared port of the sidecar`);
  }

  const env = new Map(
    (sidecar.env ?? []).map((variable) => [variable.name, variable]),
  );
  for (const [variable, fieldPath] of Object.entries(FIELD_PATHS)) {
    if (env.get(variable)?.valueFrom?.fieldRef?.fieldPath !== fieldPath) {
      fail(
        `${variable} does not come from the Downward API field ${fieldPath}`,
      );
    }
  }
  const containerName = env.get('CONTAINER_NAME')?.value;
  if (
    containerName === undefined ||
    !containerNames.includes(containerName) ||
    containerName === sidecar.name
  ) {
    fail(
      `CONTAINER_NAME ${containerName} does not name the application's container`,
    );
  }
  const tmpdir = env.get('TMPDIR')?.value;
  const mounts = (sidecar.volumeMounts ?? []).map((mount) => mount.mountPath);
  if (
    security?.readOnlyRootFilesystem === true &&
    (tmpdir === undefined || !mounts.includes(tmpdir))
  ) {
    fail(
      'with a read-only root, TMPDIR must be a mounted volume for the addon',
    );
  }

  if (sidecar.resources?.requests === undefined)
    fail('the sidecar has no resource requests');
  if (sidecar.resources?.limits?.memory === undefined)
    fail('the sidecar has no memory limit');
  return problems;
}

test('every YAML file parses', async (t) => {
  const files = yamlFiles();
  t.true(files.length >= 2, files.join('\n'));
  for (const file of files) {
    const documents = await loadDocuments(fs.readFileSync(file, 'utf8'));
    t.true(documents.length > 0, `${file} has no document`);
    for (const document of documents) {
      t.is(typeof document, 'object', file);
      const object = document as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string };
      };
      if (object.kind !== undefined) {
        t.truthy(
          object.apiVersion,
          `${file}: ${object.kind} has no apiVersion`,
        );
        t.regex(
          object.metadata?.name ?? '',
          DNS_SUBDOMAIN,
          `${file}: ${object.kind} has no valid metadata.name`,
        );
      }
    }
  }
});

test('deployment is valid', async (t) => {
  const deployment = await loadDeployment();
  t.deepEqual(deploymentProblems(deployment), []);
});

test('deployment checks reject broken copies', async (t) => {
  const original = await loadDeployment();
  const copy = (): Deployment => structuredClone(original);
  const containers = (deployment: Deployment) =>
    deployment.spec!.template!.spec!.containers!;
  const sidecar = (deployment: Deployment) => sidecarContainer(deployment)!;

  const broken: Array<[string, (deployment: Deployment) => void, RegExp]> = [
    [
      'no SYS_PTRACE',
      (d) => (sidecar(d).securityContext!.capabilities!.add = []),
      /SYS_PTRACE/,
    ],
    [
      'not root',
      (d) => (sidecar(d).securityContext!.runAsUser = 1000),
      /uid 0/,
    ],
    [
      'no shared PID namespace',
      (d) => (d.spec!.template!.spec!.shareProcessNamespace = false),
      /shareProcessNamespace/,
    ],
    [
      'selector mismatch',
      (d) => (d.spec!.selector!.matchLabels = { app: 'other' }),
      /selector/,
    ],
    [
      'long port name',
      (d) => (sidecar(d).ports![0].name = 'pprof-endpoint-1'),
      /service name/,
    ],
    [
      'duplicate container name',
      (d) => (containers(d)[1].name = containers(d)[0].name),
      /not unique/,
    ],
    ['missing image', (d) => delete containers(d)[0].image, /no image/],
    [
      'probe on an undeclared port',
      (d) => (sidecar(d).livenessProbe!.httpGet!.port = 'metrics'),
      /livenessProbe port/,
    ],
    [
      'probe on another path',
      (d) => (sidecar(d).readinessProbe!.httpGet!.path = '/health'),
      /readinessProbe path/,
    ],
    [
      'listen on another port',
      (d) => (sidecar(d).args = ['sidecar', '--listen', '0.0.0.0:7070']),
      /listens on 7070/,
    ],
    [
      'unknown flag',
      (d) => (sidecar(d).args = ['sidecar', '--port', '6060']),
      /no flag --port/,
    ],
    [
      'no POD_NAME',
      (d) =>
        (sidecar(d).env = sidecar(d).env!.filter((v) => v.name !== 'POD_NAME')),
      /POD_NAME/,
    ],
    [
      'annotated port elsewhere',
      (d) =>
        (d.spec!.template!.metadata!.annotations![
          'profiles.grafana.com/cpu.port'
        ] = '8080'),
      /cpu.port/,
    ],
    ['TMPDIR not mounted', (d) => (sidecar(d).volumeMounts = []), /TMPDIR/],
  ];
  for (const [name, breakIt, expected] of broken) {
    const deployment = copy();
    breakIt(deployment);
    const problems = deploymentProblems(deployment);
    t.true(
      problems.some((problem) => expected.test(problem)),
      `${name}: expected a problem matching ${expected}, got ${JSON.stringify(problems)}`,
    );
  }
});

test('parca config scrapes the sidecar', async (t) => {
  const [config] = (await loadDocuments(
    fs.readFileSync(PARCA_FILE, 'utf8'),
  )) as Array<Record<string, unknown>>;
  // Parca reads its config with unknown fields rejected.
  t.deepEqual(Object.keys(config).sort(), ['object_storage', 'scrape_configs']);
  const jobs = config.scrape_configs as Array<Record<string, unknown>>;
  t.is(jobs.length, 1);
  const job = jobs[0];
  t.is(typeof job.job_name, 'string');
  const scrapeKeys = [
    'job_name',
    'scrape_interval',
    'scrape_timeout',
    'kubernetes_sd_configs',
    'static_configs',
    'relabel_configs',
    'profiling_config',
    'scheme',
    'params',
  ];
  for (const key of Object.keys(job)) {
    t.true(scrapeKeys.includes(key), `unknown scrape_configs field ${key}`);
  }

  const pprof = (
    job.profiling_config as {
      pprof_config: Record<string, Record<string, unknown>>;
    }
  ).pprof_config;
  t.deepEqual(pprof.process_cpu, {
    enabled: true,
    delta: true,
    path: PROFILE_PATH,
  });
  for (const goProfile of ['memory', 'block', 'goroutine', 'mutex']) {
    t.is(
      pprof[goProfile]?.enabled,
      false,
      `${goProfile} is scraped but rbprof does not serve it`,
    );
  }
  for (const [profile, settings] of Object.entries(pprof)) {
    for (const key of Object.keys(settings)) {
      t.true(
        ['enabled', 'path', 'delta', 'keep_sample_type', 'seconds'].includes(
          key,
        ),
        `${profile}.${key} is unknown`,
      );
    }
  }

  // The relabeling keeps the port that the Deployment's sidecar names.
  const deployment = await loadDeployment();
  const portName = sidecarContainer(deployment)?.ports?.[0]?.name;
  const keep = (job.relabel_configs as Array<Record<string, unknown>>).find(
    (rule) => rule.action === 'keep',
  );
  t.deepEqual(keep?.source_labels, [
    '__meta_kubernetes_pod_container_port_name',
  ]);
  t.is(keep?.regex, portName);
});

/** Returns the Prometheus label that Kubernetes service discovery gives
 * a pod annotation: its key with every character other than a letter,
 * digit or underscore replaced by an underscore. */
function annotationLabel(key: string): string {
  return `__meta_kubernetes_pod_annotation_${key.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

test('alloy config scrapes the annotated port', async (t) => {
  const text = fs.readFileSync(ALLOY_FILE, 'utf8');
  // Braces balance outside strings and comments, a check of the nesting.
  const code = text
    .replace(/\/\/.*$/gm, '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""');
  let depth = 0;
  for (const character of code) {
    if (character === '{') {
      depth += 1;
    } else if (character === '}') {
      depth -= 1;
    }
    t.true(depth >= 0, 'a closing brace without an opening one');
  }
  t.is(depth, 0, 'unclosed braces');

  for (const block of [
    'discovery.kubernetes "pods"',
    'discovery.relabel "rbprof"',
    'pyroscope.scrape "rbprof"',
    'pyroscope.write "default"',
  ]) {
    t.true(text.includes(`${block} {`), `${block} is missing`);
  }
  t.regex(
    text,
    new RegExp(
      `profile\\.process_cpu \\{\\s*enabled = true\\s*delta\\s*= true\\s*path\\s*= "${PROFILE_PATH}"`,
    ),
  );
  for (const goProfile of ['memory', 'goroutine', 'block', 'mutex']) {
    t.regex(
      text,
      new RegExp(`profile\\.${goProfile} \\{\\s*enabled = false\\s*\\}`),
      goProfile,
    );
  }

  // The relabeling reads the annotations that the Deployment sets.
  const deployment = await loadDeployment();
  const annotations = Object.keys(
    deployment.spec?.template?.metadata?.annotations ?? {},
  );
  for (const key of [
    'profiles.grafana.com/cpu.scrape',
    'profiles.grafana.com/cpu.port',
  ]) {
    t.true(annotations.includes(key), `the Deployment lacks ${key}`);
    t.true(
      text.includes(`"${annotationLabel(key)}"`),
      `config.alloy does not read ${key}`,
    );
  }
});
