// The CLI's pieces without a live target: flag parsing, exit codes, the
// end-of-recording report and the live view.

import { PassThrough } from 'node:stream';

import test from 'ava';
import { CommanderError, InvalidArgumentError as FlagError } from 'commander';

import { EXIT_CODES, reportError } from '../dist/cli/errors';
import { LiveSummary, renderLiveSummary } from '../dist/cli/live';
import {
  parseDuration,
  parsePid,
  parseRate,
  parseTop,
  parseVersion,
} from '../dist/cli/options';
import { describeEnd } from '../dist/cli/record';
import {
  NoSuchProcessError,
  NotRubyError,
  PermissionDeniedError,
  RbprofError,
  UnsupportedVersionError,
} from '../dist/errors';
import { ProfileData } from '../dist/profile/data';
import { Profile, type ProfileState } from '../dist/profile/profile';
import { makeBatch } from './helpers/batches';

function profileWith(
  stats: ProfileState['stats'],
  options: {
    end?: ProfileState['end'];
    warnings?: string[];
    rows?: number;
  } = {},
): Profile {
  const data = new ProfileData();
  const functions: Array<[number, string]> = [];
  const samples = [];
  for (let i = 0; i < (options.rows ?? 1); i++) {
    functions.push([i, `Object#method${i}`]);
    samples.push({ stack: [i] });
  }
  data.add(
    makeBatch({ functions, samples, stats, warnings: options.warnings ?? [] }),
  );
  return new Profile({
    target: {
      pid: 4242,
      rubyVersion: '3.1.2',
      layoutVersion: '3.1.0',
      layoutVerified: true,
      rubyBinary: '/usr/bin/ruby',
    },
    data,
    sampleCount: data.sampleCount,
    stats,
    durationSeconds: 9.7,
    ...(options.end === undefined ? {} : { end: options.end }),
  });
}

const CLEAN = { taken: 100, late: 0, failed: 0, threadSamples: 100 };

test('pid parser', (t) => {
  t.is(parsePid('1234'), 1234);
  for (const bad of ['abc', '0', '-5', '1.5', '', '12abc', '1e3']) {
    t.throws(() => parsePid(bad), { instanceOf: FlagError }, bad);
  }
});

test('rate parser', (t) => {
  t.is(parseRate('99'), 99);
  t.is(parseRate('0.5'), 0.5);
  for (const bad of ['0', '-1', 'abc', '', 'Infinity', 'NaN']) {
    t.throws(() => parseRate(bad), { instanceOf: FlagError }, bad);
  }
});

test('duration parser', (t) => {
  t.is(parseDuration('4'), 4);
  t.is(parseDuration('0.25'), 0.25);
  for (const bad of ['0', '-1', 'soon', '']) {
    t.throws(() => parseDuration(bad), { instanceOf: FlagError }, bad);
  }
});

test('top parser', (t) => {
  t.is(parseTop('20'), 20);
  for (const bad of ['0', '-3', '2.5', 'all']) {
    t.throws(() => parseTop(bad), { instanceOf: FlagError }, bad);
  }
});

test('version parser', (t) => {
  t.is(parseVersion('3.1.2'), '3.1.2');
  for (const bad of ['3.1', '3', 'latest', '3.1.2.4']) {
    t.throws(() => parseVersion(bad), { instanceOf: FlagError }, bad);
  }
});

function reported(error: unknown): { code: number; text: string } {
  const stream = new PassThrough();
  const code = reportError(error, stream);
  return { code, text: String(stream.read() ?? '') };
}

test('errors map to distinct exit codes', (t) => {
  const cases: Array<[unknown, number]> = [
    [new NoSuchProcessError('no process with pid 9'), EXIT_CODES.noSuchProcess],
    [new NotRubyError('not ruby'), EXIT_CODES.notRuby],
    [
      new UnsupportedVersionError('Ruby 1.0.0 is not supported'),
      EXIT_CODES.unsupportedVersion,
    ],
    [new PermissionDeniedError('denied'), EXIT_CODES.permissionDenied],
    [
      new RbprofError('ERR_INVALID_ARGUMENT', 'rate too high'),
      EXIT_CODES.usage,
    ],
    [
      new RbprofError('ERR_VM_UNREADABLE', 'VM unreadable'),
      EXIT_CODES.samplingFailed,
    ],
    [new RbprofError('ERR_SOMETHING_NEW', 'new'), EXIT_CODES.internal],
    [new Error('bug'), EXIT_CODES.internal],
  ];
  for (const [error, expected] of cases) {
    t.is(reported(error).code, expected, String(error));
  }
  const codes = Object.values(EXIT_CODES);
  t.is(new Set(codes).size, codes.length);
});

test('error report shows message and hint', (t) => {
  const { text } = reported(
    new PermissionDeniedError('permission denied', { hint: 'Add SYS_PTRACE.' }),
  );
  t.is(text, 'rbprof: permission denied\nAdd SYS_PTRACE.\n');
});

test('unexpected errors are reported as bugs', (t) => {
  const { text } = reported(new TypeError('x is undefined'));
  t.true(text.startsWith('rbprof: internal error: TypeError: x is undefined'));
  t.true(text.includes('This is a bug in rbprof'));
});

test('help and version exit 0', (t) => {
  const help = new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)');
  const version = new CommanderError(0, 'commander.version', '0.1.0');
  const missing = new CommanderError(
    1,
    'commander.missingMandatoryOptionValue',
    'missing',
  );
  t.is(reported(help).code, 0);
  t.is(reported(version).code, 0);
  t.is(reported(missing).code, EXIT_CODES.usage);
});

test('end report counts samples', (t) => {
  const text = describeEnd(
    profileWith({ taken: 120, late: 3, failed: 1, threadSamples: 118 }),
  );
  t.is(
    text,
    'Samples: 120 taken, 3 late, 1 failed (118 thread-samples in 9.7 s).\n',
  );
});

test('end report says the process ended', (t) => {
  const text = describeEnd(
    profileWith(CLEAN, { end: { reason: 'process_exited' } }),
  );
  t.true(
    text.startsWith(
      'Process 4242 ended; the summary covers the samples taken until then.\n',
    ),
  );
});

test('end report warns when samples are skewed', (t) => {
  const late = describeEnd(
    profileWith({ taken: 100, late: 8, failed: 3, threadSamples: 97 }),
  );
  t.true(
    late.includes('rbprof: warning: 8.0% of samples were late and 3.0% failed'),
  );
  const fine = describeEnd(
    profileWith({ taken: 100, late: 6, failed: 4, threadSamples: 96 }),
  );
  t.false(fine.includes('warning'));
});

test('end report passes sampler warnings on', (t) => {
  const text = describeEnd(
    profileWith(CLEAN, { warnings: ['a stack could not be read'] }),
  );
  t.true(text.includes('rbprof: warning: a stack could not be read\n'));
});

test('end report notes an empty profile', (t) => {
  const text = describeEnd(profileWith(CLEAN, { rows: 0 }));
  t.true(text.includes('No thread was sampled while running Ruby code.'));
});

test('live view has the header and fits the terminal', (t) => {
  const profile = profileWith(CLEAN, { rows: 30 });
  const lines = renderLiveSummary(profile, { top: 20, columns: 44, rows: 12 });
  t.is(lines[0], 'Time since start: 9s. Press Ctrl+C to stop.');
  t.is(lines[1], 'Summary of profiling data so far:');
  t.is(lines[2], '% self  % total  name');
  // 12 terminal rows: two header lines, the table header, eight rows and
  // a free line for the cursor.
  t.is(lines.length, 11);
  for (const line of lines) {
    t.true(line.length <= 43, line);
  }
  t.is(lines[3], '  3.33     3.33  Object#method0 - /app/app.');
});

test('live view keeps the top rows', (t) => {
  const profile = profileWith(CLEAN, { rows: 30 });
  const lines = renderLiveSummary(profile, { top: 5, columns: 200, rows: 100 });
  t.is(lines.length, 3 + 5);
});

test('live summary redraws in place', (t) => {
  const stream = Object.assign(new PassThrough(), { columns: 100, rows: 40 });
  const profile = profileWith(CLEAN, { rows: 3 });
  const live = new LiveSummary(stream, () => profile, {
    top: 20,
    intervalMs: 60_000,
  });
  live.draw();
  live.draw();
  live.stop();
  const output = String(stream.read());

  const first = output.indexOf('Time since start');
  const second = output.indexOf('Time since start', first + 1);
  t.true(first >= 0);
  t.true(second > first);
  // Before the second view and after stop(), the cursor goes up over the
  // six lines drawn and clears below.
  const erase = '\u001b[6A\u001b[1G\u001b[0J';
  t.is(output.slice(second - erase.length, second), erase);
  t.true(output.endsWith(erase));
});
