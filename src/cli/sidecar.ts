import fs from 'node:fs';

import {
  Command,
  InvalidArgumentError as CommanderInvalidArgumentError,
  Option,
} from 'commander';

import { FileAccessError, InvalidArgumentError } from '../index';
import {
  Logger,
  MAX_RATE_HZ,
  startSidecar,
  type PushFormat,
  type PushSettings,
  type TargetSelector,
} from '../sidecar/index';
import { describeError } from '../system-errors';
import { parseDuration, parsePid, parseRate } from './options';

interface SidecarFlags {
  listen: { host: string; port: number };
  pid?: number;
  match?: RegExp;
  rate: number;
  tokenFile?: string;
  push?: URL;
  pushInterval: number;
  pushFormat: PushFormat;
  appName: string;
  label: Array<[string, string]>;
  rotate: number;
}

/** Labels that a push takes from the environment, where the pod spec
 * sets them: POD_NAME and POD_NAMESPACE through the Downward API
 * (`fieldRef: metadata.name` and `metadata.namespace`), CONTAINER_NAME as
 * a plain value. */
export const ENVIRONMENT_LABELS: ReadonlyArray<[string, string]> = [
  ['POD_NAME', 'pod'],
  ['POD_NAMESPACE', 'namespace'],
  ['CONTAINER_NAME', 'container'],
];

/** Characters that Pyroscope's application names use as syntax. */
const NAME_SYNTAX = /[{}=,\s"]/;

export function sidecarCommand(): Command {
  return new Command('sidecar')
    .description(
      'Serve CPU profiles of the Ruby processes in this PID namespace over ' +
        'HTTP, as Go programs do at /debug/pprof/profile, so that ' +
        'pprof-based continuous profilers can scrape them; optionally push ' +
        'them to a Pyroscope server. Runs until SIGTERM or SIGINT. ' +
        'Logs are JSON lines on stderr.',
    )
    .addOption(
      new Option(
        '--listen <host:port>',
        'the address to serve on; port 0 picks a free port',
      )
        .argParser(parseListen)
        .default(parseListen('0.0.0.0:6060'), '0.0.0.0:6060'),
    )
    .addOption(
      new Option(
        '--pid <pid>',
        'profile this process instead of finding Ruby processes',
      )
        .argParser(parsePid)
        .conflicts('match'),
    )
    .option(
      '--match <regex>',
      'profile the processes whose command line (arguments joined by ' +
        'spaces) matches this JavaScript regular expression, without ' +
        'their matching descendants',
      parseRegExp,
    )
    .option(
      '--rate <hz>',
      `samples per second, unless a request sets rate or hz (at most ${MAX_RATE_HZ})`,
      parseSidecarRate,
      99,
    )
    .option(
      '--token-file <path>',
      'require "Authorization: Bearer TOKEN" on /debug/pprof/profile and ' +
        '/metrics, with TOKEN read from this file at the start',
    )
    .option(
      '--push <url>',
      'also send a profile every --push-interval to this Pyroscope server ' +
        '(its /ingest endpoint)',
      parseUrl,
    )
    .option(
      '--push-interval <seconds>',
      'seconds covered by each pushed profile',
      parseDuration,
      15,
    )
    .addOption(
      new Option('--push-format <format>', 'the format of pushed profiles')
        .choices(['pprof', 'folded'])
        .default('pprof'),
    )
    .option(
      '--app-name <name>',
      'the application name of pushed profiles, before the labels',
      parseAppName,
      'ruby',
    )
    .option(
      '--label <key=value>',
      'a label of pushed profiles, in addition to pod, namespace and ' +
        'container from POD_NAME, POD_NAMESPACE and CONTAINER_NAME; repeatable',
      collectLabel,
      [],
    )
    .option(
      '--rotate <seconds>',
      'replace each recording by a new one after this many seconds, so ' +
        'that its memory starts over',
      parseDuration,
      600,
    )
    .action(sidecarAction);
}

async function sidecarAction(
  flags: SidecarFlags,
  command: Command,
): Promise<void> {
  const pushOnly = ['pushInterval', 'pushFormat', 'appName', 'label'];
  if (flags.push === undefined) {
    const given = pushOnly.filter(
      (name) => command.getOptionValueSource(name) === 'cli',
    );
    if (given.length > 0) {
      throw new InvalidArgumentError(
        `${given.map(flagName).join(', ')} ${given.length === 1 ? 'takes' : 'take'} effect only with --push`,
        { hint: 'Add --push URL, or leave the push options out.' },
      );
    }
  }
  const log = new Logger({ write: (line) => process.stderr.write(line) });
  const selector: TargetSelector =
    flags.pid !== undefined
      ? { kind: 'pid', pid: flags.pid }
      : flags.match !== undefined
        ? { kind: 'match', pattern: flags.match }
        : { kind: 'auto' };
  const token =
    flags.tokenFile === undefined ? undefined : readToken(flags.tokenFile);

  // The handlers are installed first, so that a signal during the start
  // also stops the sidecar once it runs.
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  const signaled = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      for (const name of signals) {
        process.off(name, onSignal);
      }
      log.info('signal received', { signal });
      resolve();
    };
    for (const name of signals) {
      process.on(name, onSignal);
    }
  });
  const sidecar = await startSidecar({
    host: flags.listen.host,
    port: flags.listen.port,
    selector,
    rateHz: flags.rate,
    rotateSeconds: flags.rotate,
    log,
    ...(token === undefined ? {} : { token }),
    ...(flags.push === undefined ? {} : { push: pushSettings(flags) }),
  });
  await signaled;
  await sidecar.stop();
}

function flagName(name: string): string {
  return `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function pushSettings(flags: SidecarFlags): PushSettings {
  const labels: Record<string, string> = {};
  for (const [variable, label] of ENVIRONMENT_LABELS) {
    const value = process.env[variable];
    if (value !== undefined && value !== '') {
      labels[label] = value.replace(new RegExp(NAME_SYNTAX, 'g'), '_');
    }
  }
  for (const [key, value] of flags.label) {
    labels[key] = value;
  }
  return {
    url: flags.push!,
    intervalSeconds: flags.pushInterval,
    format: flags.pushFormat,
    appName: flags.appName,
    labels,
  };
}

/** Reads the bearer token: the file's content without surrounding white
 * space, as a mounted Kubernetes secret contains it. */
function readToken(path: string): string {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new FileAccessError(
      `cannot read the token file ${path}: ${describeError(error)}`,
      path,
      { cause: error },
    );
  }
  const token = text.trim();
  if (token === '' || /\s/.test(token)) {
    throw new InvalidArgumentError(
      `the token file ${path} must contain one token without white space`,
    );
  }
  return token;
}

/** Parses `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all addresses). */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new CommanderInvalidArgumentError(
      'Expected HOST:PORT, such as 0.0.0.0:6060, 127.0.0.1:6060 or [::]:6060.',
    );
  }
  const host = match[1] ?? (match[2] === '' ? '0.0.0.0' : match[2]);
  return { host, port };
}

function parseRegExp(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch (error) {
    throw new CommanderInvalidArgumentError(
      `Expected a regular expression: ${(error as Error).message}.`,
    );
  }
}

function parseSidecarRate(value: string): number {
  const rate = parseRate(value);
  if (rate > MAX_RATE_HZ) {
    throw new CommanderInvalidArgumentError(
      `Expected at most ${MAX_RATE_HZ} samples per second.`,
    );
  }
  return rate;
}

function parseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CommanderInvalidArgumentError(
      'Expected a URL such as http://pyroscope:4040.',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CommanderInvalidArgumentError('Expected an http or https URL.');
  }
  return url;
}

function parseAppName(value: string): string {
  if (value === '' || NAME_SYNTAX.test(value)) {
    throw new CommanderInvalidArgumentError(
      'Expected a name without braces, commas, equals signs, quotes or white space.',
    );
  }
  return value;
}

function collectLabel(
  value: string,
  previous: Array<[string, string]>,
): Array<[string, string]> {
  const match = /^([A-Za-z_][A-Za-z0-9_.]*)=(.+)$/.exec(value);
  if (match === null || NAME_SYNTAX.test(match[2])) {
    throw new CommanderInvalidArgumentError(
      'Expected KEY=VALUE, a key of letters, digits, _ and . and a value ' +
        'without braces, commas, equals signs, quotes or white space.',
    );
  }
  return [...previous, [match[1], match[2]]];
}
