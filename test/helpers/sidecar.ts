// `rbprof sidecar` for tests: started beside a Ruby application in a PID
// namespace of its own, or on the host, with its JSON logs parsed and
// HTTP requests to it on loopback.

import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';

import type { ExecutionContext } from 'ava';

import { CLI, ROOT, RUBY, spawnGuarded } from './processes';

export const SIDECAR_APP = path.join(
  ROOT,
  'test',
  'workloads',
  'sidecar_app.rb',
);
export const HOT_PATH = 'SidecarApp#hot_path';

/** How long a test waits for a log line or an output line. */
const WAIT_MS = 30_000;

export type LogLine = Record<string, unknown> & {
  time: string;
  level: string;
  msg: string;
};

export interface SidecarOptions {
  /** A shell command that starts the application in the namespace, in
   * the background, before the sidecar. */
  readonly app?: string;
  /** Arguments after `rbprof sidecar`; `--listen 127.0.0.1:0` comes
   * first. */
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Start both in a new PID namespace (needs root); true by default. */
  readonly namespace?: boolean;
}

export class SidecarProcess {
  readonly lines: LogLine[] = [];
  readonly output: string[] = [];
  stderr = '';
  port = 0;
  readonly #waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderr += `${line}\n`;
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        // Not a log line, as a crash's stack; kept in `stderr`.
      }
      this.#wake();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.output.push(line);
      this.#wake();
    });
    child.once('exit', () => this.#wake());
  }

  url(pathAndQuery: string): string {
    return `http://127.0.0.1:${this.port}${pathAndQuery}`;
  }

  /** Resolves with the first log line from `from` on that `match`
   * accepts. */
  waitForLog(match: (line: LogLine) => boolean, from = 0): Promise<LogLine> {
    return this.#waitFor(() => this.lines.slice(from).find(match), 'log line');
  }

  /** Resolves with the match of the first output line from `from` on
   * that matches `pattern`. */
  waitForOutput(pattern: RegExp, from = 0): Promise<RegExpExecArray> {
    return this.#waitFor(() => {
      for (const line of this.output.slice(from)) {
        const match = pattern.exec(line);
        if (match !== null) {
          return match;
        }
      }
      return undefined;
    }, `output line matching ${pattern}`);
  }

  #waitFor<T>(find: () => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode) {
          done();
          reject(
            new Error(`the sidecar exited before a ${what}:\n${this.stderr}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${WAIT_MS} ms:\n${this.stderr}`));
      }, WAIT_MS);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  #wake(): void {
    for (const check of [...this.#waiters]) {
      check();
    }
  }
}

/** Quotes a word for sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Returns the sh command that starts the sidecar application with
 * `args`. */
export function appCommand(args: readonly string[] = []): string {
  return [RUBY, SIDECAR_APP, ...args].map(shellQuote).join(' ');
}

/**
 * Starts the sidecar and waits for its `sidecar started` line. In a
 * namespace, `unshare --kill-child` takes the namespace down with it when
 * the test's teardown kills it.
 */
export async function startSidecar(
  t: ExecutionContext,
  options: SidecarOptions = {},
): Promise<SidecarProcess> {
  const sidecarArgs = [
    CLI,
    'sidecar',
    '--listen',
    '127.0.0.1:0',
    ...(options.args ?? []),
  ];
  const env = { ...process.env, ...options.env };
  let child: ChildProcess;
  if (options.namespace ?? true) {
    const sidecar = [process.execPath, ...sidecarArgs]
      .map(shellQuote)
      .join(' ');
    const script =
      options.app === undefined
        ? `exec ${sidecar}`
        : `${options.app} & exec ${sidecar}`;
    child = spawnGuarded(
      t,
      'unshare',
      ['--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', script],
      { env },
    );
  } else {
    child = spawnGuarded(t, process.execPath, sidecarArgs, { env });
  }
  const sidecar = new SidecarProcess(child);
  const started = await sidecar.waitForLog(
    (line) => line.msg === 'sidecar started',
  );
  sidecar.port = started.port as number;
  return sidecar;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Sends a request on loopback and collects the response. */
export function request(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/**
 * Parses the Prometheus text format into values by series, such as
 * `rbprof_sidecar_targets` or
 * `rbprof_sidecar_pushes_total{result="ok"}`. Throws on a line that is
 * not valid, or a series whose family has no HELP and TYPE line before
 * it.
 */
export function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  const typed = new Set<string>();
  const helped = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') {
      continue;
    }
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(
      line,
    );
    if (comment !== null) {
      (comment[1] === 'HELP' ? helped : typed).add(comment[2]);
      if (comment[1] === 'TYPE' && !/^(counter|gauge)$/.test(comment[3])) {
        throw new Error(`unexpected metric type: ${line}`);
      }
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/.exec(
        line,
      );
    if (sample === null) {
      throw new Error(`invalid metrics line: ${JSON.stringify(line)}`);
    }
    const [, name, labels, value] = sample;
    if (!typed.has(name) || !helped.has(name)) {
      throw new Error(`metric ${name} has no HELP or TYPE line before it`);
    }
    values.set(`${name}${labels ?? ''}`, Number(value));
  }
  return values;
}

/** Fetches /metrics and returns its values by series. */
export async function metrics(
  sidecar: SidecarProcess,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> {
  const result = await request(sidecar.url('/metrics'), { headers });
  if (result.status !== 200) {
    throw new Error(
      `/metrics responded with status ${result.status}: ${result.body}`,
    );
  }
  return parseMetrics(result.body.toString('utf8'));
}

/** Polls /metrics until `ready` accepts the values; returns them. */
export async function waitForMetrics(
  sidecar: SidecarProcess,
  ready: (values: Map<string, number>) => boolean,
): Promise<Map<string, number>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const values = await metrics(sidecar);
    if (ready(values)) {
      return values;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `metrics did not reach the expected values:\n${[...values].join('\n')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
