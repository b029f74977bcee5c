// rbprof sidecar's HTTP endpoints, with a Ruby application and the sidecar
// in a PID namespace of their own and requests on loopback.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import {
  GO,
  parsePprofTop,
  runTool,
  whenFound,
  writeTemp,
} from './helpers/consumers';
import { countSamples, decodePprof } from './helpers/pprof';
import { CLI } from './helpers/processes';
import {
  appCommand,
  HOT_PATH,
  metrics,
  parseMetrics,
  request,
  startSidecar,
  waitForMetrics,
} from './helpers/sidecar';

const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;
const asRootWithGo =
  process.getuid?.() === 0
    ? whenFound(GO, 'go (for go tool pprof)', test.serial as typeof test)
    : test.serial.skip;

asRoot('profile names the hot method', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  const [, appPid] = await sidecar.waitForOutput(/^ready (\d+)$/);
  const result = await request(sidecar.url('/debug/pprof/profile?seconds=2'));
  t.is(result.status, 200, result.body.toString());
  t.is(result.headers['content-type'], 'application/octet-stream');
  t.is(result.headers['content-disposition'], 'attachment; filename="profile"');

  const profile = decodePprof(result.body);
  t.deepEqual(profile.sampleTypes, [
    { type: 'samples', unit: 'count' },
    { type: 'cpu', unit: 'nanoseconds' },
  ]);
  t.deepEqual(profile.periodType, { type: 'cpu', unit: 'nanoseconds' });
  t.is(profile.period, Math.round(1e9 / 99));
  const hot = countSamples(profile, (sample) =>
    sample.functions.includes(HOT_PATH),
  );
  t.true(hot > 0, `no sample has ${HOT_PATH}`);
  // The pid label is the application's pid in the namespace, not PID 1.
  t.not(Number(appPid), 1);
  for (const sample of profile.samples) {
    t.is(sample.labels.pid, Number(appPid));
  }
  t.true(profile.durationNanos >= 1.9e9);
});

asRootWithGo('go tool pprof reads the profile', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const result = await request(sidecar.url('/debug/pprof/profile?seconds=2'));
  t.is(result.status, 200);
  const file = writeTemp(t, 'sidecar.pb.gz', result.body);
  const top = runTool(t, GO, [
    'tool',
    'pprof',
    '-top',
    '-sample_index=samples',
    file,
  ]).stdout;
  const rows = parsePprofTop(top);
  const row = rows.find((candidate) => candidate.name === HOT_PATH);
  t.truthy(row, top);
  t.true(Number(row?.cum) > 0);
  t.is(
    Number(/Total samples = (\d+)/.exec(top)?.[1]),
    countSamples(decodePprof(result.body)),
  );
});

asRoot('concurrent scrapes share one sampler', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const first = request(sidecar.url('/debug/pprof/profile?seconds=4'));
  const second = request(sidecar.url('/debug/pprof/profile?seconds=3'));
  const during = await waitForMetrics(
    sidecar,
    (values) => values.get('rbprof_sidecar_profile_requests_in_flight') === 2,
  );
  t.is(during.get('rbprof_sidecar_profile_requests_in_flight'), 2);

  for (const result of await Promise.all([first, second])) {
    t.is(result.status, 200, result.body.toString());
    const profile = decodePprof(result.body);
    t.true(
      countSamples(profile, (sample) => sample.functions.includes(HOT_PATH)) >
        0,
    );
  }
  // With no request left, the sampler stops.
  const after = await waitForMetrics(
    sidecar,
    (values) => values.get('rbprof_sidecar_recordings') === 0,
  );
  t.is(after.get('rbprof_sidecar_profile_requests_in_flight'), 0);
  t.is(
    after.get(
      'rbprof_sidecar_http_requests_total{endpoint="profile",code="200"}',
    ),
    2,
  );
  // Both requests were open at the same time, yet the sidecar attached
  // once.
  t.is(
    sidecar.lines.filter((line) => line.msg === 'recording started').length,
    1,
  );
});

asRoot('invalid requests are rejected', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  const cases: Array<[string, number, RegExp]> = [
    [
      '/debug/pprof/profile?seconds=0',
      400,
      /^seconds must be an integer from 1 to 300, got "0"\.\n$/,
    ],
    ['/debug/pprof/profile?seconds=301', 400, /^seconds must be/],
    ['/debug/pprof/profile?seconds=1.5', 400, /^seconds must be/],
    ['/debug/pprof/profile?seconds=abc', 400, /^seconds must be/],
    ['/debug/pprof/profile?seconds=', 400, /^seconds must be/],
    ['/debug/pprof/profile?seconds=1&rate=0', 400, /^rate must be a number/],
    ['/debug/pprof/profile?seconds=1&hz=5000', 400, /^hz must be a number/],
    [
      '/debug/pprof/profile?seconds=1&rate=10&hz=20',
      400,
      /^rate and hz are the same parameter/,
    ],
    [
      '/debug/pprof/profile?seconds=1&pid=-3',
      400,
      /^pid must be a positive integer/,
    ],
    [
      '/debug/pprof/profile?seconds=1&pid=99999',
      404,
      /^process 99999 is not a Ruby target/,
    ],
    ['/debug/pprof/heap', 404, /^\/debug\/pprof\/heap not found\./],
    ['/', 404, /not found/],
  ];
  for (const [url, status, body] of cases) {
    const result = await request(sidecar.url(url));
    t.is(result.status, status, url);
    t.regex(result.body.toString(), body, url);
    t.is(result.body.toString().split('\n').length, 2, `${url}: one line`);
    t.is(result.headers['content-type'], 'text/plain; charset=utf-8');
  }
  const posted = await request(sidecar.url('/debug/pprof/profile'), {
    method: 'POST',
  });
  t.is(posted.status, 405);
  t.is(posted.headers.allow, 'GET');
  const values = await metrics(sidecar);
  t.is(
    values.get(
      'rbprof_sidecar_http_requests_total{endpoint="profile",code="400"}',
    ),
    9,
  );
  t.is(
    values.get(
      'rbprof_sidecar_http_requests_total{endpoint="other",code="404"}',
    ),
    2,
  );
});

asRoot('rate parameter sets the sampling rate', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const result = await request(
    sidecar.url('/debug/pprof/profile?seconds=1&hz=250'),
  );
  t.is(result.status, 200);
  t.is(decodePprof(result.body).period, Math.round(1e9 / 250));
});

asRoot('token is required when set', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-sidecar-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 's3cret-token\n');
  const sidecar = await startSidecar(t, {
    app: appCommand(),
    args: ['--token-file', tokenFile],
  });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const profileUrl = sidecar.url('/debug/pprof/profile?seconds=1');

  const attempts: Array<Record<string, string>> = [
    {},
    { Authorization: 'Bearer wrong' },
    { Authorization: 'Bearer s3cret-token-and-more' },
    { Authorization: 's3cret-token' },
  ];
  for (const headers of attempts) {
    for (const url of [profileUrl, sidecar.url('/metrics')]) {
      const result = await request(url, { headers });
      t.is(result.status, 401, `${url} ${JSON.stringify(headers)}`);
      t.is(result.headers['www-authenticate'], 'Bearer realm="rbprof"');
    }
  }
  const good = { Authorization: 'Bearer s3cret-token' };
  const profile = await request(profileUrl, { headers: good });
  t.is(profile.status, 200);
  t.true(countSamples(decodePprof(profile.body)) > 0);
  const values = await metrics(sidecar, good);
  t.is(
    values.get(
      'rbprof_sidecar_http_requests_total{endpoint="profile",code="401"}',
    ),
    4,
  );
  // Health checks stay open, so a probe needs no secret.
  const health = await request(sidecar.url('/healthz'));
  t.is(health.status, 200);
  t.is(health.body.toString(), 'ok\n');
  // The token never reaches the logs.
  t.false(sidecar.stderr.includes('s3cret'));
});

asRoot('metrics parse and counters move', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const before = await waitForMetrics(
    sidecar,
    (values) => values.get('rbprof_sidecar_targets') === 1,
  );
  t.is(before.get('rbprof_sidecar_samples_taken_total'), 0);
  t.is(before.get('rbprof_sidecar_recordings'), 0);
  t.true((before.get('process_resident_memory_bytes') ?? 0) > 0);

  const result = await request(sidecar.url('/debug/pprof/profile?seconds=1'));
  t.is(result.status, 200);
  const after = await metrics(sidecar);
  const taken = after.get('rbprof_sidecar_samples_taken_total') ?? 0;
  t.true(taken > 0);
  t.true((after.get('rbprof_sidecar_thread_samples_total') ?? 0) > 0);
  t.true((after.get('rbprof_sidecar_samples_late_total') ?? -1) <= taken);
  t.is(after.get('rbprof_sidecar_samples_failed_total'), 0);
  t.is(
    after.get(
      'rbprof_sidecar_http_requests_total{endpoint="profile",code="200"}',
    ),
    1,
  );
  t.is(
    after.get(
      'rbprof_sidecar_http_requests_total{endpoint="metrics",code="200"}',
    ),
    (before.get(
      'rbprof_sidecar_http_requests_total{endpoint="metrics",code="200"}',
    ) ?? 0) + 1,
  );
  t.throws(() => parseMetrics('no_value_here\n'));
});

asRoot('disconnect releases the share', async (t) => {
  const sidecar = await startSidecar(t, { app: appCommand() });
  await sidecar.waitForOutput(/^ready (\d+)$/);
  const controller = new AbortController();
  const pending = request(sidecar.url('/debug/pprof/profile?seconds=60'), {
    signal: controller.signal,
  });
  await waitForMetrics(
    sidecar,
    (values) =>
      values.get('rbprof_sidecar_profile_requests_in_flight') === 1 &&
      values.get('rbprof_sidecar_recordings') === 1,
  );
  controller.abort();
  await t.throwsAsync(pending);
  const after = await waitForMetrics(
    sidecar,
    (values) =>
      values.get('rbprof_sidecar_profile_requests_canceled_total') === 1,
  );
  t.is(after.get('rbprof_sidecar_profile_requests_in_flight'), 0);
  await waitForMetrics(
    sidecar,
    (values) => values.get('rbprof_sidecar_recordings') === 0,
  );
  t.truthy(
    sidecar.lines.find(
      (line) => line.msg === 'profile request canceled by the client',
    ),
  );
});

asRoot('no target answers 503', async (t) => {
  const sidecar = await startSidecar(t, {
    app: 'sleep 600',
    args: ['--match', 'no-such-program-here'],
  });
  const result = await request(sidecar.url('/debug/pprof/profile?seconds=1'));
  t.is(result.status, 503);
  t.is(
    result.body.toString(),
    'no Ruby target: no process in /proc has a command line that matches /no-such-program-here/.\n',
  );
  const values = await metrics(sidecar);
  t.is(values.get('rbprof_sidecar_targets'), 0);
});

asRoot('process that is not Ruby answers 503', async (t) => {
  const sidecar = await startSidecar(t, {
    app: 'sleep 600',
    args: ['--match', '^sleep '],
  });
  const line = await sidecar.waitForLog(
    (candidate) => candidate.msg === 'cannot profile process',
  );
  t.is((line.error as { code: string }).code, 'ERR_NOT_RUBY');
  const result = await request(sidecar.url('/debug/pprof/profile?seconds=1'));
  t.is(result.status, 503);
  t.regex(
    result.body.toString(),
    /^no Ruby target: process \d+ \(sleep 600\) cannot be profiled: /,
  );
});

test.serial('sigterm stops the sidecar', async (t) => {
  const sidecar = await startSidecar(t, {
    namespace: false,
    args: ['--match', 'no-such-program-here'],
  });
  const exited = new Promise<number | null>((resolve) =>
    sidecar.child.once('exit', (code) => resolve(code)),
  );
  sidecar.child.kill('SIGTERM');
  t.is(await exited, 0);
  const messages = sidecar.lines.map((line) => line.msg);
  t.true(messages.includes('sidecar stopping'));
  t.true(messages.includes('sidecar stopped'));
  for (const line of sidecar.lines) {
    t.regex(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.true(['debug', 'info', 'warn', 'error'].includes(line.level));
  }
});

test.serial('unreadable token file exits 8', (t) => {
  const result = spawnSync(
    process.execPath,
    [CLI, 'sidecar', '--token-file', '/nonexistent/token'],
    { encoding: 'utf8' },
  );
  t.is(result.status, 8);
  t.regex(
    result.stderr,
    /^rbprof: cannot read the token file \/nonexistent\/token: ENOENT/,
  );
});

test.serial('busy port exits 2', async (t) => {
  const first = await startSidecar(t, {
    namespace: false,
    args: ['--match', 'no-such-program-here'],
  });
  const result = spawnSync(
    process.execPath,
    [
      CLI,
      'sidecar',
      '--listen',
      `127.0.0.1:${first.port}`,
      '--match',
      'no-such-program-here',
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  t.is(result.status, 2);
  t.true(
    result.stderr.includes(
      `rbprof: cannot listen on 127.0.0.1:${first.port}: the port is in use\n` +
        'Choose another address or port with --listen HOST:PORT.\n',
    ),
    result.stderr,
  );
});

test.serial('push flags need --push', (t) => {
  const result = spawnSync(
    process.execPath,
    [CLI, 'sidecar', '--push-interval', '5'],
    { encoding: 'utf8' },
  );
  t.is(result.status, 2);
  t.regex(result.stderr, /--push-interval takes effect only with --push/);
});
