// The sidecar's HTTP endpoints: a CPU profile like Go's net/http/pprof,
// health and metrics. Nothing else is served.

import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

import type { Logger } from './log';
import type { Metrics } from './metrics';
import { NoTargetError, UnknownPidError, type SamplerHub } from './sampler';

export const PROFILE_PATH = '/debug/pprof/profile';
export const METRICS_PATH = '/metrics';
export const HEALTH_PATH = '/healthz';

/** Go's default for `seconds`. */
export const DEFAULT_SECONDS = 30;
export const MAX_SECONDS = 300;
/** The highest rate a request may ask for. The core allows more, but a
 * sidecar beside a production process should not. */
export const MAX_RATE_HZ = 1000;
/** The maximum number of profile requests sampled at the same time.
 * Each keeps the counts of its window, so this bounds the sidecar's
 * memory. */
export const MAX_PROFILE_REQUESTS = 16;

export interface SidecarServerOptions {
  readonly hub: SamplerHub;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Samples per second of requests that do not set a rate. */
  readonly rateHz: number;
  /** The bearer token that /debug/pprof/profile and /metrics require;
   * none when absent. */
  readonly token?: string;
  /** Aborted when the sidecar stops. Profile requests in progress then
   * get a 503 response. */
  readonly signal: AbortSignal;
}

type Endpoint = 'profile' | 'metrics' | 'healthz' | 'other';

/** A plain-text response: every response but a profile. */
class Reply {
  constructor(
    readonly status: number,
    readonly text: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

/** The parameters of a profile request. */
export interface ProfileParams {
  readonly seconds: number;
  readonly rateHz: number;
  readonly pid?: number;
}

/** Creates the server, which the caller starts with `listen()`. */
export function createSidecarServer(
  options: SidecarServerOptions,
): http.Server {
  const tokenDigest =
    options.token === undefined ? undefined : digest(options.token);
  let profileRequests = 0;

  const handle = async (
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://sidecar');
    const endpoint = endpointOf(url.pathname);
    response.once('finish', () =>
      options.metrics.requests.add(
        { endpoint, code: String(response.statusCode) },
        1,
      ),
    );
    const method = request.method ?? 'GET';
    if (endpoint === 'other') {
      return send(
        response,
        new Reply(
          404,
          `${url.pathname} not found. This server serves ${PROFILE_PATH}, ` +
            `${METRICS_PATH} and ${HEALTH_PATH}.`,
        ),
      );
    }
    const methods = endpoint === 'profile' ? ['GET'] : ['GET', 'HEAD'];
    if (!methods.includes(method)) {
      return send(
        response,
        new Reply(405, `${method} is not allowed on ${url.pathname}.`, {
          Allow: methods.join(', '),
        }),
      );
    }
    if (endpoint === 'healthz') {
      return send(response, new Reply(200, 'ok'));
    }
    if (
      tokenDigest !== undefined &&
      !hasToken(request.headers.authorization, tokenDigest)
    ) {
      options.log.warn('request without a valid token', {
        path: url.pathname,
        remote: request.socket.remoteAddress,
      });
      return send(
        response,
        new Reply(401, 'missing or invalid bearer token.', {
          'WWW-Authenticate': 'Bearer realm="rbprof"',
        }),
      );
    }
    if (endpoint === 'metrics') {
      response.writeHead(200, {
        'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
      });
      response.end(method === 'HEAD' ? undefined : options.metrics.render());
      return;
    }

    let params: ProfileParams;
    try {
      params = parseProfileParams(url.searchParams, options.rateHz);
    } catch (error) {
      options.log.warn('invalid profile request', {
        query: url.search,
        error,
      });
      return send(response, new Reply(400, (error as Error).message));
    }
    if (profileRequests >= MAX_PROFILE_REQUESTS) {
      return send(
        response,
        new Reply(
          503,
          `${MAX_PROFILE_REQUESTS} profile requests are in progress, the ` +
            'maximum. Try again when one has finished.',
          { 'Retry-After': '5' },
        ),
      );
    }
    profileRequests++;
    options.metrics.profileRequestsInFlight.set({}, profileRequests);
    try {
      await serveProfile(response, params, options);
    } finally {
      profileRequests--;
      options.metrics.profileRequestsInFlight.set({}, profileRequests);
    }
  };

  return http.createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.log.error('request failed', { path: request.url, error });
      if (!response.headersSent) {
        send(response, new Reply(500, `internal error: ${String(error)}`));
      } else {
        response.destroy();
      }
    });
  });
}

/** Samples for the requested seconds and sends the profile. */
async function serveProfile(
  response: http.ServerResponse,
  params: ProfileParams,
  options: SidecarServerOptions,
): Promise<void> {
  const { hub, log, metrics, signal } = options;
  const endMs = performance.now() + params.seconds * 1000;
  let window;
  try {
    window = await hub.open({
      rateHz: params.rateHz,
      endMs,
      ...(params.pid === undefined ? {} : { pid: params.pid }),
    });
  } catch (error) {
    if (error instanceof NoTargetError) {
      log.warn('no target for a profile request', { reason: error.message });
      return send(
        response,
        new Reply(503, `no Ruby target: ${error.message}.`),
      );
    }
    if (error instanceof UnknownPidError) {
      return send(response, new Reply(404, `${error.message}.`));
    }
    throw error;
  }

  // Waits for the end of the window, the client's disconnect or the stop
  // of the sidecar, whichever comes first.
  const outcome = await new Promise<'done' | 'gone' | 'stopping'>((resolve) => {
    const finish = (result: 'done' | 'gone' | 'stopping') => {
      clearTimeout(timer);
      response.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onClose = () => finish('gone');
    const onAbort = () => finish('stopping');
    const timer = setTimeout(
      () => finish('done'),
      Math.max(0, endMs - performance.now()),
    );
    if (response.destroyed || response.socket === null) {
      finish('gone');
      return;
    }
    response.once('close', onClose);
    if (signal.aborted) {
      finish('stopping');
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
  if (outcome !== 'done') {
    hub.cancel(window);
    if (outcome === 'gone') {
      metrics.requestsCanceled.add({}, 1);
      log.info('profile request canceled by the client', {
        seconds: params.seconds,
      });
      return;
    }
    return send(response, new Reply(503, 'the sidecar is stopping.'));
  }

  const profile = await hub.close(window);
  if (profile === undefined) {
    return send(
      response,
      new Reply(503, 'no Ruby target: every target exited during sampling.'),
    );
  }
  const body = profile.toPprof();
  response.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': 'attachment; filename="profile"',
    'Content-Length': String(body.length),
    'X-Content-Type-Options': 'nosniff',
  });
  response.end(body);
  log.info('profile served', {
    seconds: params.seconds,
    rateHz: params.rateHz,
    ...(params.pid === undefined ? {} : { pid: params.pid }),
    samples: profile.sampleCount,
    bytes: body.length,
  });
}

/**
 * Parses `seconds` (default 30, an integer from 1 to 300), `rate` or its
 * alias `hz` (samples per second, default the sidecar's rate) and `pid`.
 * Throws an Error with a one-line message for an invalid value. Other
 * parameters are ignored, as Go's handler does.
 */
export function parseProfileParams(
  query: URLSearchParams,
  defaultRateHz: number,
): ProfileParams {
  const secondsText = query.get('seconds');
  let seconds = DEFAULT_SECONDS;
  if (secondsText !== null) {
    seconds = Number(secondsText);
    if (
      !/^\d+$/.test(secondsText) ||
      !(seconds >= 1 && seconds <= MAX_SECONDS)
    ) {
      throw new Error(
        `seconds must be an integer from 1 to ${MAX_SECONDS}, got ${JSON.stringify(secondsText)}.`,
      );
    }
  }

  const rates: Array<{ name: string; text: string }> = [];
  for (const name of ['rate', 'hz']) {
    const text = query.get(name);
    if (text !== null) {
      rates.push({ name, text });
    }
  }
  let rateHz = defaultRateHz;
  for (const { name, text } of rates) {
    const value = Number(text);
    if (
      text.trim() === '' ||
      !Number.isFinite(value) ||
      value <= 0 ||
      value > MAX_RATE_HZ
    ) {
      throw new Error(
        `${name} must be a number of samples per second above 0 and at most ${MAX_RATE_HZ}, got ${JSON.stringify(text)}.`,
      );
    }
    rateHz = value;
  }
  if (rates.length === 2 && Number(rates[0].text) !== Number(rates[1].text)) {
    throw new Error(
      `rate and hz are the same parameter but differ: ${rates[0].text} and ${rates[1].text}.`,
    );
  }

  const pidText = query.get('pid');
  if (pidText === null) {
    return { seconds, rateHz };
  }
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText) || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new Error(
      `pid must be a positive integer, got ${JSON.stringify(pidText)}.`,
    );
  }
  return { seconds, rateHz, pid };
}

function endpointOf(pathname: string): Endpoint {
  switch (pathname) {
    case PROFILE_PATH:
      return 'profile';
    case METRICS_PATH:
      return 'metrics';
    case HEALTH_PATH:
      return 'healthz';
    default:
      return 'other';
  }
}

/** Sends a plain-text response of one line, as Go's pprof handler does
 * for errors. */
function send(response: http.ServerResponse, reply: Reply): void {
  response.writeHead(reply.status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...reply.headers,
  });
  response.end(`${reply.text}\n`);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Compares the bearer token in constant time: both sides are hashed to
 * the same length first, so neither the length nor the content of the
 * expected token leaks through the time taken. */
function hasToken(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const given = digest(match?.[1] ?? '');
  return timingSafeEqual(given, expected) && match !== null;
}
