// rbprof sidecar's pushes to a Pyroscope ingest endpoint: a receiver on
// loopback records each request, and the tests check its query, body and
// the sidecar's handling of failures.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import test, { type ExecutionContext } from 'ava';

import { countSamples, decodePprof } from './helpers/pprof';
import {
  appCommand,
  HOT_PATH,
  metrics,
  startSidecar,
  waitForMetrics,
  type SidecarProcess,
} from './helpers/sidecar';

const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;

interface Received {
  readonly method: string;
  readonly url: URL;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** An HTTP server on loopback that records every request and responds
 * with `status`. */
class Receiver {
  readonly requests: Received[] = [];
  status = 200;
  readonly #waiters = new Set<() => void>();
  readonly #server: http.Server;

  constructor(t: ExecutionContext) {
    this.#server = http.createServer((incoming, response) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        this.requests.push({
          method: incoming.method ?? '',
          url: new URL(incoming.url ?? '/', 'http://receiver'),
          headers: incoming.headers,
          body: Buffer.concat(chunks),
        });
        response.writeHead(this.status, { 'Content-Type': 'text/plain' });
        response.end(this.status === 200 ? '' : 'ingester unavailable');
        for (const wake of [...this.#waiters]) {
          wake();
        }
      });
    });
    t.teardown(
      () => new Promise<void>((resolve) => this.#server.close(() => resolve())),
    );
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) =>
      this.#server.listen(0, '127.0.0.1', resolve),
    );
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Resolves once `count` requests have arrived. */
  waitFor(count: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fewer than ${count} pushes within 30 s`)),
        30_000,
      );
      const check = () => {
        if (this.requests.length >= count) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          resolve();
        }
      };
      this.#waiters.add(check);
      check();
    });
  }
}

const POD_ENV = {
  POD_NAME: 'web-7d9f',
  POD_NAMESPACE: 'shop',
  CONTAINER_NAME: 'app',
};

async function startPushing(
  t: ExecutionContext,
  receiverUrl: string,
  args: readonly string[] = [],
): Promise<SidecarProcess> {
  const sidecar = await startSidecar(t, {
    app: appCommand(),
    args: ['--push', receiverUrl, '--push-interval', '1', ...args],
    env: POD_ENV,
  });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  return sidecar;
}

asRoot('push sends pprof with labels', async (t) => {
  const receiver = new Receiver(t);
  const url = await receiver.listen();
  const sidecar = await startPushing(t, url, ['--label', 'env=test']);
  await receiver.waitFor(2);

  for (const pushed of receiver.requests.slice(0, 2)) {
    t.is(pushed.method, 'POST');
    t.is(pushed.url.pathname, '/ingest');
    const query = pushed.url.searchParams;
    t.is(
      query.get('name'),
      'ruby{pod=web-7d9f,namespace=shop,container=app,env=test}',
    );
    t.is(query.get('format'), 'pprof');
    t.is(query.get('sampleRate'), '99');
    t.is(query.get('spyName'), 'rbprof');
    const from = Number(query.get('from'));
    const until = Number(query.get('until'));
    t.true(Number.isInteger(from));
    t.true(Number.isInteger(until));
    t.true(until > from);
    t.true(Math.abs(from - Date.now() / 1000) < 120);
    t.is(pushed.headers['content-type'], 'application/octet-stream');
    const profile = decodePprof(pushed.body);
    t.true(
      countSamples(profile, (sample) => sample.functions.includes(HOT_PATH)) >
        0,
    );
  }
  // Each interval starts where the previous one ended.
  const [first, second] = receiver.requests;
  t.true(
    Number(second.url.searchParams.get('from')) >=
      Number(first.url.searchParams.get('from')),
  );
  const values = await waitForMetrics(
    sidecar,
    (candidate) =>
      (candidate.get('rbprof_sidecar_pushes_total{result="ok"}') ?? 0) >= 2,
  );
  t.is(values.get('rbprof_sidecar_pushes_total{result="failed"}'), undefined);
});

asRoot('push sends folded stacks', async (t) => {
  const receiver = new Receiver(t);
  const url = await receiver.listen();
  await startPushing(t, `${url}/ingest`, [
    '--push-format',
    'folded',
    '--app-name',
    'checkout',
  ]);
  await receiver.waitFor(1);
  const [pushed] = receiver.requests;
  t.is(pushed.url.pathname, '/ingest');
  const query = pushed.url.searchParams;
  t.is(
    query.get('name'),
    'checkout.cpu{pod=web-7d9f,namespace=shop,container=app}',
  );
  t.is(query.get('format'), 'folded');
  t.is(query.get('units'), 'samples');
  t.is(query.get('aggregationType'), 'sum');
  const lines = pushed.body.toString('utf8').trim().split('\n');
  t.true(lines.length > 0);
  for (const line of lines) {
    t.regex(line, /^\S.* \d+$/);
  }
  t.true(lines.some((line) => line.includes(`;${HOT_PATH} - `)));
});

asRoot('push failures are counted and retried', async (t) => {
  const receiver = new Receiver(t);
  receiver.status = 503;
  const url = await receiver.listen();
  const sidecar = await startPushing(t, url);
  await receiver.waitFor(2);
  const failed = await waitForMetrics(
    sidecar,
    (values) =>
      (values.get('rbprof_sidecar_pushes_total{result="failed"}') ?? 0) >= 2,
  );
  t.is(failed.get('rbprof_sidecar_pushes_total{result="ok"}'), undefined);
  const logged = await sidecar.waitForLog((line) => line.msg === 'push failed');
  t.is(logged.level, 'error');
  t.regex(
    (logged.error as { message: string }).message,
    /^the server responded with status 503: ingester unavailable$/,
  );
  t.is(logged.url, `${url}/ingest`);

  // The next interval sends its own profile once the server is back.
  receiver.status = 200;
  await waitForMetrics(
    sidecar,
    (values) =>
      (values.get('rbprof_sidecar_pushes_total{result="ok"}') ?? 0) >= 1,
  );
  // Failed intervals are dropped, not queued: every push covers one
  // interval.
  for (const pushed of receiver.requests) {
    const seconds =
      Number(pushed.url.searchParams.get('until')) -
      Number(pushed.url.searchParams.get('from'));
    t.true(seconds <= 3, `a push covers ${seconds} s`);
  }
  const values = await metrics(sidecar);
  t.true(
    (values.get('rbprof_sidecar_pushes_total{result="failed"}') ?? 0) >= 2,
  );
});

asRoot('push to a closed port fails', async (t) => {
  // Nothing listens on port 1 of loopback.
  const sidecar = await startPushing(t, 'http://127.0.0.1:1');
  const logged = await sidecar.waitForLog((line) => line.msg === 'push failed');
  t.regex((logged.error as { message: string }).message, /ECONNREFUSED/);
  const values = await metrics(sidecar);
  t.true(
    (values.get('rbprof_sidecar_pushes_total{result="failed"}') ?? 0) >= 1,
  );
});
