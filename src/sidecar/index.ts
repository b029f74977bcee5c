// The sidecar server: makes the Ruby processes of a pod scrapeable by
// pprof-based continuous profilers, and optionally pushes their profiles.
// It is built on the public library API only.

import type { AddressInfo } from 'node:net';

import { InvalidArgumentError } from '../index';
import { Discovery, type TargetSelector } from './discovery';
import { createSidecarServer } from './http';
import type { Logger } from './log';
import { Metrics } from './metrics';
import { Pusher, type PushFormat } from './push';
import { SamplerHub } from './sampler';

export { Logger } from './log';
export type { TargetSelector } from './discovery';
export type { PushFormat } from './push';
export { MAX_RATE_HZ } from './http';

export interface PushSettings {
  readonly url: URL;
  readonly intervalSeconds: number;
  readonly format: PushFormat;
  readonly appName: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface SidecarOptions {
  readonly host: string;
  /** The port, or 0 for a free port, which `Sidecar.address` then
   * contains. */
  readonly port: number;
  readonly selector: TargetSelector;
  /** Samples per second of requests that set no rate, and of pushes. */
  readonly rateHz: number;
  /** Seconds after which each recording is replaced by a new one. */
  readonly rotateSeconds: number;
  readonly token?: string;
  readonly push?: PushSettings;
  readonly log: Logger;
  /** The proc file system to scan, `/proc` by default. */
  readonly procRoot?: string;
}

export interface Sidecar {
  readonly address: AddressInfo;
  /** Stops serving and sampling; pushes the samples since the last push
   * first. */
  stop(): Promise<void>;
}

/** How long a stop waits for the last push. */
const FINAL_PUSH_TIMEOUT_MS = 5000;

/**
 * Starts the sidecar: the first scan of /proc, then the HTTP server and
 * the pushes. Throws an `InvalidArgumentError` when the address cannot
 * be listened on.
 */
export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { log } = options;
  const metrics = new Metrics();
  const discovery = new Discovery({
    selector: options.selector,
    log,
    metrics,
    selfPid: process.pid,
    ...(options.procRoot === undefined ? {} : { procRoot: options.procRoot }),
  });
  await discovery.start();
  const hub = new SamplerHub({
    discovery,
    log,
    metrics,
    rotateMs: options.rotateSeconds * 1000,
  });
  const stopping = new AbortController();
  const server = createSidecarServer({
    hub,
    metrics,
    log,
    rateHz: options.rateHz,
    signal: stopping.signal,
    ...(options.token === undefined ? {} : { token: options.token }),
  });

  let address: AddressInfo;
  try {
    address = await listen(server, options.host, options.port);
  } catch (error) {
    discovery.stop();
    await hub.stop();
    throw error;
  }

  let pusher: Pusher | undefined;
  if (options.push !== undefined) {
    pusher = new Pusher({
      url: options.push.url,
      intervalMs: options.push.intervalSeconds * 1000,
      format: options.push.format,
      appName: options.push.appName,
      labels: options.push.labels,
      rateHz: options.rateHz,
      hub,
      log,
      metrics,
    });
    await pusher.start();
  }

  log.info('sidecar started', {
    address: address.address,
    port: address.port,
    targets: discovery.targets.map((target) => target.pid),
    rateHz: options.rateHz,
    token: options.token !== undefined,
  });

  let stopped: Promise<void> | undefined;
  const stop = async () => {
    log.info('sidecar stopping');
    stopping.abort();
    const closed = new Promise<void>((resolve) =>
      server.close(() => resolve()),
    );
    server.closeIdleConnections();
    if (pusher !== undefined) {
      await withTimeout(pusher.stop(true), FINAL_PUSH_TIMEOUT_MS);
    }
    discovery.stop();
    await hub.stop();
    await closed;
    log.info('sidecar stopped');
  };
  return {
    address,
    stop: () => (stopped ??= stop()),
  };
}

function listen(
  server: ReturnType<typeof createSidecarServer>,
  host: string,
  port: number,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const reasons: Record<string, string> = {
        EADDRINUSE: 'the port is in use',
        EACCES: 'permission denied',
        EADDRNOTAVAIL: 'the address is not one of this host',
      };
      reject(
        new InvalidArgumentError(
          `cannot listen on ${where}: ${reasons[error.code ?? ''] ?? error.message}`,
          {
            hint: 'Choose another address or port with --listen HOST:PORT.',
            cause: error,
          },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
