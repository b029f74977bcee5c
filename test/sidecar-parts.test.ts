// The parts of rbprof sidecar that need no target: log rate limits,
// parameter and flag parsing, /proc parsing and the choice of roots.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { parseListen } from '../dist/cli/sidecar';
import { rootsOf } from '../dist/sidecar/discovery';
import { parseProfileParams } from '../dist/sidecar/http';
import { Logger } from '../dist/sidecar/log';
import { Metrics } from '../dist/sidecar/metrics';
import { listProcesses, looksLikeRuby, parseStat } from '../dist/sidecar/proc';
import { ingestUrl } from '../dist/sidecar/push';
import { parseMetrics } from './helpers/sidecar';

/** Creates a logger with a clock that the test moves, and the list of
 * lines it writes. */
function logger(burst: number, windowMs: number) {
  const lines: Array<Record<string, unknown>> = [];
  const clock = { now: Date.UTC(2026, 0, 2, 3, 4, 5) };
  const log = new Logger({
    write: (line) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
    burst,
    windowMs,
    now: () => clock.now,
  });
  return { log, lines, clock };
}

test('log line has time, level, message', (t) => {
  const { log, lines } = logger(5, 60_000);
  log.info('target found', { pid: 12, msg: 'shadowed' });
  t.deepEqual(lines, [
    {
      time: '2026-01-02T03:04:05.000Z',
      level: 'info',
      msg: 'target found',
      pid: 12,
      field_msg: 'shadowed',
    },
  ]);
});

test('log writes errors with code and hint', (t) => {
  const { log, lines } = logger(5, 60_000);
  const error = Object.assign(new Error('denied'), {
    code: 'ERR_PERMISSION_DENIED',
    hint: 'add SYS_PTRACE',
  });
  log.error('cannot attach to target', { error });
  t.deepEqual(lines[0].error, {
    message: 'denied',
    code: 'ERR_PERMISSION_DENIED',
    hint: 'add SYS_PTRACE',
  });
});

test('log limits repeats per key', (t) => {
  const { log, lines, clock } = logger(2, 10_000);
  for (let i = 0; i < 5; i++) {
    log.error('push failed', { attempt: i });
  }
  log.info('other message');
  t.deepEqual(
    lines.map((line) => [line.msg, line.attempt]),
    [
      ['push failed', 0],
      ['push failed', 1],
      ['other message', undefined],
    ],
  );
  clock.now += 10_000;
  log.error('push failed', { attempt: 5 });
  t.is(lines[3].attempt, 5);
  t.is(lines[3].suppressed, 3);
  log.error('push failed', { attempt: 6 });
  t.is(lines[4].suppressed, undefined);
});

test('log key overrides message', (t) => {
  const { log, lines } = logger(1, 10_000);
  log.warn('cannot profile process', { pid: 1 }, 'key a');
  log.warn('cannot profile process', { pid: 2 }, 'key b');
  log.warn('cannot profile process', { pid: 3 }, 'key a');
  t.deepEqual(
    lines.map((line) => line.pid),
    [1, 2],
  );
});

test('profile params default like go', (t) => {
  t.deepEqual(parseProfileParams(new URLSearchParams(''), 99), {
    seconds: 30,
    rateHz: 99,
  });
  t.deepEqual(
    parseProfileParams(new URLSearchParams('seconds=300&hz=250&pid=7'), 99),
    { seconds: 300, rateHz: 250, pid: 7 },
  );
  t.deepEqual(
    parseProfileParams(new URLSearchParams('seconds=1&rate=50&hz=50'), 99),
    { seconds: 1, rateHz: 50 },
  );
  // Other parameters, such as Go's gc or debug, are ignored.
  t.deepEqual(parseProfileParams(new URLSearchParams('gc=1&debug=2'), 99), {
    seconds: 30,
    rateHz: 99,
  });
});

test('profile params reject bad values', (t) => {
  for (const query of [
    'seconds=0',
    'seconds=301',
    'seconds=-1',
    'seconds=2.5',
    'seconds=1e2',
    'seconds=%201',
    'rate=0',
    'rate=-5',
    'rate=1001',
    'rate=NaN',
    'hz=',
    'rate=10&hz=11',
    'pid=0',
    'pid=1.5',
    'pid=abc',
  ]) {
    const error = t.throws(
      () => parseProfileParams(new URLSearchParams(query), 99),
      undefined,
      query,
    );
    t.false(error?.message.includes('\n'), query);
  }
});

test('listen address parses', (t) => {
  t.deepEqual(parseListen('0.0.0.0:6060'), { host: '0.0.0.0', port: 6060 });
  t.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.deepEqual(parseListen('[::]:6060'), { host: '::', port: 6060 });
  t.deepEqual(parseListen(':8080'), { host: '0.0.0.0', port: 8080 });
  t.deepEqual(parseListen('localhost:9'), { host: 'localhost', port: 9 });
  for (const value of ['6060', '1.2.3.4', 'host:65536', ':', '::1:80', 'a:b']) {
    t.throws(() => parseListen(value), undefined, value);
  }
});

test('ingest url gets its path', (t) => {
  const cases: Array<[string, string]> = [
    ['http://pyroscope:4040', 'http://pyroscope:4040/ingest'],
    ['http://pyroscope:4040/', 'http://pyroscope:4040/ingest'],
    ['https://host/prefix/', 'https://host/prefix/ingest'],
    ['http://host/ingest?x=1', 'http://host/ingest'],
  ];
  for (const [base, expected] of cases) {
    t.is(ingestUrl(new URL(base)).toString(), expected);
  }
});

test('stat parses odd command names', (t) => {
  const stat =
    '42 (ruby (puma) x) S 7 42 42 0 -1 4194560 100 0 0 0 5 1 0 0 20 0 2 0 123456 0 0';
  t.deepEqual(parseStat(stat), {
    ppid: 7,
    startTime: '123456',
    comm: 'ruby (puma) x',
  });
  t.is(parseStat('garbage'), undefined);
  t.is(parseStat('1 (x) S'), undefined);
});

test('roots have no selected ancestor', (t) => {
  const entry = (pid: number, ppid: number) => ({
    pid,
    ppid,
    startTime: '1',
    comm: 'ruby',
    cmdline: 'ruby',
  });
  // 1 pause; 10 ruby master, 11 and 12 its workers; 13 a shell under 11
  // with 14, a ruby spawned through it; 20 another ruby under the pause.
  const all = [
    entry(1, 0),
    entry(10, 1),
    entry(11, 10),
    entry(12, 10),
    entry(13, 11),
    entry(14, 13),
    entry(20, 1),
  ];
  const ruby = all.filter((candidate) => ![1, 13].includes(candidate.pid));
  t.deepEqual(
    rootsOf(ruby, all).map((root) => root.pid),
    [10, 20],
  );
  // A parent loop from a torn read ends the walk.
  const loop = [entry(30, 31), entry(31, 30)];
  t.deepEqual(
    rootsOf([loop[0]], loop).map((root) => root.pid),
    [30],
  );
});

test('proc scan finds this process', async (t) => {
  const processes = await listProcesses('/proc');
  const self = processes.find((candidate) => candidate.pid === process.pid);
  t.truthy(self);
  t.is(self?.ppid, process.ppid);
  t.is(self?.exe, fs.realpathSync(process.execPath));
  t.true(self?.cmdline.includes(process.argv[1] ?? '') ?? false);
  t.false(await looksLikeRuby('/proc', self!));
});

test('proc scan reads a fake root', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-proc-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const write = (pid: number, file: string, text: string) => {
    fs.mkdirSync(path.join(root, String(pid)), { recursive: true });
    fs.writeFileSync(path.join(root, String(pid), file), text);
  };
  write(5, 'stat', '5 (puma) S 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0');
  write(5, 'cmdline', 'puma\0-C\0config/puma.rb\0');
  write(
    5,
    'maps',
    '7f0000000000-7f0000001000 r--p 00000000 08:01 1 /usr/lib/libruby.so.3.3\n',
  );
  // A kernel thread has an empty command line.
  write(
    6,
    'stat',
    '6 (kworker/0:1) I 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0',
  );
  write(6, 'cmdline', '');
  fs.mkdirSync(path.join(root, 'self'));

  const processes = await listProcesses(root);
  t.deepEqual(processes, [
    {
      pid: 5,
      ppid: 1,
      startTime: '777',
      comm: 'puma',
      cmdline: 'puma -C config/puma.rb',
    },
  ]);
  t.true(await looksLikeRuby(root, processes[0]));
});

test('metrics render valid text', (t) => {
  const metrics = new Metrics();
  metrics.requests.add({ endpoint: 'profile', code: '200' }, 1);
  metrics.requests.add({ endpoint: 'profile', code: '200' }, 1);
  metrics.attachFailures.add({ code: 'ERR_"odd\\' }, 1);
  metrics.targets.set({}, 3);
  const values = parseMetrics(metrics.render());
  t.is(
    values.get(
      'rbprof_sidecar_http_requests_total{endpoint="profile",code="200"}',
    ),
    2,
  );
  t.is(
    values.get('rbprof_sidecar_attach_failures_total{code="ERR_\\"odd\\\\"}'),
    1,
  );
  t.is(values.get('rbprof_sidecar_targets'), 3);
  t.is(values.get('rbprof_sidecar_samples_taken_total'), 0);
  t.false(values.has('rbprof_sidecar_pushes_total'));
});
