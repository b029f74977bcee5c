// The example manifests in deploy/, read with the YAML loader of
// @kubernetes/client-node. It deserializes each document that has an
// apiVersion and kind into Kubernetes' object model, which drops fields
// that the kind does not have, and returns other documents as plain data.

import fs from 'node:fs';
import path from 'node:path';

import { ROOT } from './processes';

export const DEPLOY_DIR = path.join(ROOT, 'deploy');
export const DEPLOYMENT_FILE = path.join(
  DEPLOY_DIR,
  'kubernetes',
  'ruby-app.yaml',
);

/** The parts of a container spec that the tests read. */
export interface Container {
  name?: string;
  image?: string;
  args?: string[];
  command?: string[];
  ports?: Array<{ name?: string; containerPort?: number; protocol?: string }>;
  env?: Array<{
    name?: string;
    value?: string;
    valueFrom?: { fieldRef?: { fieldPath?: string } };
  }>;
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: {
    requests?: Record<string, unknown>;
    limits?: Record<string, unknown>;
  };
  volumeMounts?: Array<{ name?: string; mountPath?: string }>;
}

export interface Probe {
  httpGet?: { path?: string; port?: number | string };
}

/** The parts of a Deployment that the tests read. */
export interface Deployment {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    template?: {
      metadata?: {
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      };
      spec?: {
        shareProcessNamespace?: boolean;
        containers?: Container[];
        volumes?: Array<{ name?: string; emptyDir?: object }>;
      };
    };
  };
}

/** Lists the files under `directory` whose names end in .yaml or .yml. */
export function yamlFiles(directory = DEPLOY_DIR): string[] {
  return fs
    .readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.ya?ml$/.test(name))
    .map((name) => path.join(directory, name))
    .sort();
}

/** The YAML loader of @kubernetes/client-node, typed here. */
type LoadAllYaml = (text: string) => unknown[];

/** Parses every YAML document of `text`. Throws on invalid YAML. */
export async function loadDocuments(text: string): Promise<unknown[]> {
  // The package is ESM only, so a CommonJS test imports it at run time.
  // The name is a variable so that TypeScript does not type-check the
  // package's declarations, which need type packages this project lacks.
  const packageName = '@kubernetes/client-node';
  const { loadAllYaml } = (await import(packageName)) as {
    loadAllYaml: LoadAllYaml;
  };
  return loadAllYaml(text);
}

/** Returns the one Deployment of deploy/kubernetes/ruby-app.yaml. */
export async function loadDeployment(): Promise<Deployment> {
  const documents = await loadDocuments(
    fs.readFileSync(DEPLOYMENT_FILE, 'utf8'),
  );
  const deployments = documents.filter(
    (document) => (document as Deployment).kind === 'Deployment',
  );
  if (deployments.length !== 1) {
    throw new Error(
      `${DEPLOYMENT_FILE} has ${deployments.length} Deployments, expected 1`,
    );
  }
  return deployments[0] as Deployment;
}

/** Returns the rbprof container of a pod template: the one whose
 * arguments start with the `sidecar` command. */
export function sidecarContainer(
  deployment: Deployment,
): Container | undefined {
  return deployment.spec?.template?.spec?.containers?.find(
    (container) => container.args?.[0] === 'sidecar',
  );
}
