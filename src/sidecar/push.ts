// Sends a profile of each interval to a server with Pyroscope's ingest
// API: POST /ingest with the profile as the body and its metadata in the
// query (name, from, until, format, sampleRate, spyName).

import http from 'node:http';
import https from 'node:https';

import type { Profile } from '../index';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { NoTargetError, type SamplerHub } from './sampler';
import type { SampleWindow } from './window';

export type PushFormat = 'pprof' | 'folded';

export interface PusherOptions {
  /** The server, such as `http://pyroscope:4040`. `/ingest` is appended
   * unless the path already ends with it. */
  readonly url: URL;
  readonly intervalMs: number;
  readonly format: PushFormat;
  /** The application name, without labels. */
  readonly appName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly rateHz: number;
  readonly hub: SamplerHub;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** The `spyName` sent with each profile. Pyroscope formats frames by
 * function name for every spy name but rbspy's. */
export const SPY_NAME = 'rbprof';
/** The maximum duration of a push in milliseconds. A slower push is
 * aborted and counted as failed. */
const MAX_PUSH_MS = 30_000;
/** Bytes of an error response kept for the log. */
const MAX_ERROR_BODY_BYTES = 512;

/**
 * Pushes the samples of every interval. Each interval's window starts
 * where the previous one ended, so no sample is pushed twice or lost
 * between them. A push that fails is logged and counted, and its profile
 * dropped: the next interval sends its own, so nothing queues up.
 */
export class Pusher {
  readonly #options: PusherOptions;
  readonly #ingestUrl: URL;
  #window: SampleWindow | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;

  constructor(options: PusherOptions) {
    this.#options = options;
    this.#ingestUrl = ingestUrl(options.url);
  }

  /** The application name with labels, as sent in `name`. */
  get name(): string {
    const { appName, labels, format } = this.#options;
    // Pyroscope appends the profile type to the name of a pprof profile
    // itself, while a folded profile names it.
    const base = format === 'folded' ? `${appName}.cpu` : appName;
    const pairs = Object.entries(labels).map(
      ([key, value]) => `${key}=${value}`,
    );
    return `${base}{${pairs.join(',')}}`;
  }

  async start(): Promise<void> {
    this.#options.log.info('push started', {
      url: redact(this.#ingestUrl),
      intervalSeconds: this.#options.intervalMs / 1000,
      format: this.#options.format,
      name: this.name,
    });
    await this.#openWindow();
    this.#timer = setInterval(
      () => void this.#tick(),
      this.#options.intervalMs,
    );
  }

  /** Stops pushing. With `flush`, the samples since the last push are
   * pushed first. */
  async stop(flush: boolean): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#inFlight;
    const window = this.#window;
    this.#window = undefined;
    if (window === undefined) {
      return;
    }
    if (!flush) {
      this.#options.hub.cancel(window);
      return;
    }
    const profile = await this.#options.hub.close(window);
    if (profile !== undefined) {
      await this.#push(profile);
    }
  }

  async #openWindow(): Promise<void> {
    try {
      this.#window = await this.#options.hub.open({
        rateHz: this.#options.rateHz,
      });
      if (this.#stopped) {
        this.#options.hub.cancel(this.#window);
        this.#window = undefined;
      }
    } catch (error) {
      if (!(error instanceof NoTargetError)) {
        throw error;
      }
      this.#options.log.warn('nothing to push', { reason: error.message });
    }
  }

  async #tick(): Promise<void> {
    const { hub, log, metrics } = this.#options;
    const window = this.#window;
    if (window === undefined) {
      await this.#openWindow();
      return;
    }
    this.#window = hub.split(window, performance.now());
    const profile = await hub.close(window);
    if (profile === undefined || profile.sampleCount === 0) {
      return;
    }
    if (this.#inFlight !== undefined) {
      metrics.pushes.add({ result: 'failed' }, 1);
      log.warn('push skipped: the previous push has not finished', {
        url: redact(this.#ingestUrl),
      });
      return;
    }
    this.#inFlight = this.#push(profile).finally(() => {
      this.#inFlight = undefined;
    });
  }

  async #push(profile: Profile): Promise<void> {
    const { format, rateHz, log, metrics, intervalMs } = this.#options;
    const startMs = profile.startTimeMs ?? Date.now();
    const from = Math.floor(startMs / 1000);
    const until = Math.max(
      from + 1,
      Math.round((startMs + profile.stats.durationSeconds * 1000) / 1000),
    );
    const url = new URL(this.#ingestUrl);
    url.searchParams.set('name', this.name);
    url.searchParams.set('from', String(from));
    url.searchParams.set('until', String(until));
    url.searchParams.set('format', format);
    url.searchParams.set('sampleRate', String(rateHz));
    url.searchParams.set('spyName', SPY_NAME);
    if (format === 'folded') {
      url.searchParams.set('units', 'samples');
      url.searchParams.set('aggregationType', 'sum');
    }
    const body =
      format === 'pprof'
        ? profile.toPprof()
        : Buffer.from(profile.toCollapsed());
    const contentType =
      format === 'pprof' ? 'application/octet-stream' : 'text/plain';
    try {
      await post(url, body, contentType, Math.min(intervalMs, MAX_PUSH_MS));
      metrics.pushes.add({ result: 'ok' }, 1);
    } catch (error) {
      metrics.pushes.add({ result: 'failed' }, 1);
      log.error('push failed', { url: redact(this.#ingestUrl), error });
    }
  }
}

/** Returns the ingest endpoint of a server URL. */
export function ingestUrl(base: URL): URL {
  const url = new URL(base);
  if (!url.pathname.endsWith('/ingest')) {
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/ingest`;
  }
  url.search = '';
  return url;
}

/** Returns the URL without user name and password, for logs. */
function redact(url: URL): string {
  const copy = new URL(url);
  copy.username = '';
  copy.password = '';
  return copy.toString();
}

/** Sends a POST request. Rejects on a network error, a timeout or a
 * status other than 2xx. User name and password in the URL are sent as
 * Basic authentication. */
function post(
  url: URL,
  body: Buffer,
  contentType: string,
  timeoutMs: number,
): Promise<void> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Type': contentType,
          'Content-Length': String(body.length),
        },
        signal: AbortSignal.timeout(timeoutMs),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on('data', (chunk: Buffer) => {
          if (kept < MAX_ERROR_BODY_BYTES) {
            chunks.push(chunk.subarray(0, MAX_ERROR_BODY_BYTES - kept));
            kept += Math.min(chunk.length, MAX_ERROR_BODY_BYTES - kept);
          }
        });
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve();
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8').trim();
          reject(
            new Error(
              `the server responded with status ${status}${text === '' ? '' : `: ${text}`}`,
            ),
          );
        });
      },
    );
    request.on('error', (error: Error) => {
      reject(
        error.name === 'AbortError'
          ? new Error(`timed out after ${timeoutMs / 1000} s`)
          : error,
      );
    });
    request.end(body);
  });
}
