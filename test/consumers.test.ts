// Each format of the fixed profile read by the program it is for: go tool
// pprof, callgrind_annotate, inferno (in the addon), an XML parser, and
// checks of speedscope's schema and folded-stack importer.

import { gunzipSync } from 'node:zlib';

import test from 'ava';

import { collapsedLines } from '../dist/formats/collapsed';
import { loadNative } from '../dist/native';
import { ProfileData } from '../dist/profile/data';
import { Profile } from '../dist/profile/profile';
import { makeBatch } from './helpers/batches';
import {
  CALLGRIND_ANNOTATE,
  GO,
  importFoldedLikeSpeedscope,
  parseCallgrindAnnotate,
  parsePprofTop,
  runTool,
  speedscopeProblems,
  whenFound,
  writeTemp,
  XMLLINT,
} from './helpers/consumers';
import {
  FIXED_ALL_SAMPLES,
  FIXED_RUNNING_SAMPLES,
  FIXED_TARGET,
  fixedProfile,
} from './helpers/fixed-profile';

const ALL_STATES = ['running', 'waiting_gvl', 'blocked'] as const;

const withGo = whenFound(GO, 'go (for go tool pprof)', test);
const withCallgrind = whenFound(
  CALLGRIND_ANNOTATE,
  'callgrind_annotate (valgrind)',
  test,
);
const withXmllint = whenFound(XMLLINT, 'xmllint (libxml2-utils)', test);

withGo('pprof top shows sample counts', (t) => {
  const file = writeTemp(t, 'fixed.pb.gz', fixedProfile().toPprof());
  const { stdout } = runTool(t, GO, [
    'tool',
    'pprof',
    '-top',
    '-sample_index=samples',
    file,
  ]);
  t.regex(stdout, /^Type: samples$/m);
  t.regex(stdout, /^Time: 2023-11-14 22:13:20 UTC$/m);
  t.regex(stdout, /^Duration: 2\.50s, Total samples = 21 /m);
  const rows = new Map(parsePprofTop(stdout).map((row) => [row.name, row]));
  t.is(rows.get('Object#alpha')?.flat, '11');
  t.is(rows.get('Object#beta')?.flat, '6');
  t.is(rows.get('Object#fib')?.flat, '3');
  t.is(rows.get('Version#<=>')?.flat, '1');
  t.is(rows.get('<main>')?.cum, '18');
  t.is(rows.get('block in Worker#run')?.cum, '3');
  t.is(rows.get('Integer#times')?.cum, '4');
  t.false(rows.has('Kernel#sleep'));
});

withGo('pprof top shows cpu time', (t) => {
  const file = writeTemp(t, 'fixed.pb.gz', fixedProfile().toPprof());
  const { stdout } = runTool(t, GO, ['tool', 'pprof', '-top', file]);
  t.regex(stdout, /^Type: cpu$/m);
  // 21 samples at 100 Hz are 210 ms.
  t.regex(stdout, /Total samples = 210ms/);
  const rows = new Map(parsePprofTop(stdout).map((row) => [row.name, row]));
  t.is(rows.get('Object#alpha')?.flat, '110ms');
});

withGo('pprof raw shows labels', (t) => {
  const profile = fixedProfile();
  const file = writeTemp(
    t,
    'fixed-wall.pb.gz',
    profile.toPprof({ states: ALL_STATES }),
  );
  const { stdout } = runTool(t, GO, ['tool', 'pprof', '-raw', file]);
  t.regex(stdout, /^PeriodType: wall nanoseconds$/m);
  t.regex(stdout, /^Period: 10000000$/m);
  t.regex(stdout, /^samples\/count wall\/nanoseconds$/m);
  t.regex(stdout, /thread_name:\[worker\] thread_state:\[blocked\]/);
  t.regex(stdout, /pid:\[4242\] thread_id:\[4250\]/);
  t.regex(stdout, /pid:\[4242\] thread_id:\[4242\]/);
  t.regex(stdout, /Object#alpha \/app\/lib\/work\.rb:10/);
  t.regex(stdout, /Kernel#sleep unknown:0/);
});

withGo('pprof traces show labels', (t) => {
  const file = writeTemp(t, 'fixed.pb.gz', fixedProfile().toPprof());
  const { stdout } = runTool(t, GO, [
    'tool',
    'pprof',
    '-traces',
    '-tagfocus=thread_name=worker',
    file,
  ]);
  t.regex(stdout, /thread_name:\s+worker/);
  t.regex(stdout, /thread_id:\s+4250/);
  t.regex(stdout, /20ms\s+Object#alpha\n\s+block in Worker#run/);
  t.notRegex(stdout, /<main>/);
});

withGo('pprof wall counts every state', (t) => {
  const file = writeTemp(
    t,
    'fixed-wall.pb.gz',
    fixedProfile().toPprof({ states: ALL_STATES }),
  );
  const { stdout } = runTool(t, GO, [
    'tool',
    'pprof',
    '-top',
    '-sample_index=samples',
    file,
  ]);
  t.regex(stdout, new RegExp(`Total samples = ${FIXED_ALL_SAMPLES} `));
  const rows = new Map(parsePprofTop(stdout).map((row) => [row.name, row]));
  t.is(rows.get('Kernel#sleep')?.flat, '3');
  t.is(rows.get('Object#alpha')?.flat, '13');
});

withGo('pprof without rate has counts only', (t) => {
  const data = new ProfileData();
  data.add(
    makeBatch({
      functions: [
        [0, '<main>'],
        [1, 'Object#work'],
      ],
      threads: [[0]],
      samples: [{ stack: [0, 1] }, { stack: [0, 1] }, { stack: [0] }],
    }),
  );
  const profile = new Profile({
    target: FIXED_TARGET,
    data,
    stats: data.stats,
    durationSeconds: 1,
  });
  const file = writeTemp(t, 'no-rate.pb.gz', profile.toPprof());
  const { stdout } = runTool(t, GO, ['tool', 'pprof', '-raw', file]);
  t.regex(stdout, /^PeriodType: samples count$/m);
  t.regex(stdout, /^Period: 1$/m);
  t.regex(stdout, /^samples\/count$/m);
  t.notRegex(stdout, /^Time:/m);
  t.regex(stdout, /^\s+2: 2 1 $/m);
});

test('pprof is gzip of a profile', (t) => {
  const gzipped = fixedProfile().toPprof();
  // gzip magic, then the first field of profile.proto: sample_type.
  t.is(gzipped[0], 0x1f);
  t.is(gzipped[1], 0x8b);
  t.is(gunzipSync(gzipped)[0], (1 << 3) | 2);
});

withCallgrind('callgrind_annotate reads the totals', (t) => {
  const file = writeTemp(t, 'callgrind.out.4242', fixedProfile().toCallgrind());
  const { stdout, stderr } = runTool(t, CALLGRIND_ANNOTATE, [
    '--auto=no',
    file,
  ]);
  t.is(stderr, '');
  t.regex(stdout, /^Events recorded:\s+Samples$/m);
  const { totals, rows } = parseCallgrindAnnotate(stdout);
  t.is(totals, FIXED_RUNNING_SAMPLES);
  t.is(rows.get('/app/lib/work.rb:Object#alpha'), 11);
  t.is(rows.get('/app/lib/work.rb:Object#beta'), 6);
  t.is(rows.get('/app/lib/fib.rb:Object#fib'), 3);
  t.is(rows.get('/app/lib/version & more.rb:Version#<=>'), 1);
});

withCallgrind('callgrind_annotate inclusive costs', (t) => {
  const file = writeTemp(t, 'callgrind.out.4242', fixedProfile().toCallgrind());
  const { stdout, stderr } = runTool(t, CALLGRIND_ANNOTATE, [
    '--auto=no',
    '--inclusive=yes',
    file,
  ]);
  t.is(stderr, '');
  const { totals, rows } = parseCallgrindAnnotate(stdout);
  t.is(totals, FIXED_RUNNING_SAMPLES);
  t.is(rows.get('/app/main.rb:<main>'), 18);
  t.is(rows.get('unknown:Integer#times'), 4);
  t.is(rows.get('/app/lib/worker.rb:block in Worker#run'), 3);
  // fib calls itself; its inclusive cost still counts each sample once.
  t.is(rows.get('/app/lib/fib.rb:Object#fib'), 3);
});

withCallgrind('callgrind_annotate tree of callers', (t) => {
  const file = writeTemp(t, 'callgrind.out.4242', fixedProfile().toCallgrind());
  const { stdout, stderr } = runTool(t, CALLGRIND_ANNOTATE, [
    '--auto=no',
    '--tree=caller',
    file,
  ]);
  t.is(stderr, '');
  t.regex(stdout, /9 \(\s*[\d.]+%\)\s+< \/app\/main\.rb:<main> \(9x\)/);
  t.regex(
    stdout,
    /2 \(\s*[\d.]+%\)\s+< \/app\/lib\/worker\.rb:block in Worker#run \(2x\)/,
  );
});

test('callgrind counts the chosen states', (t) => {
  const text = fixedProfile().toCallgrind({ states: ALL_STATES });
  t.regex(text, new RegExp(`^totals: ${FIXED_ALL_SAMPLES}$`, 'm'));
  t.regex(text, /^c?fn=\(\d+\) Kernel#sleep$/m);
});

withXmllint('flamegraph svg is well-formed XML', (t) => {
  const file = writeTemp(t, 'fixed.svg', fixedProfile().toFlamegraphSvg());
  const { stderr } = runTool(t, XMLLINT, ['--noout', '--nonet', file]);
  t.is(stderr, '');
});

test('flamegraph svg has search script', (t) => {
  const svg = fixedProfile().toFlamegraphSvg();
  t.regex(svg, /<script type="text\/ecmascript"><!\[CDATA\[/);
  t.regex(svg, /function search\(/);
  t.regex(svg, /<text id="search"[^>]*>Search<\/text>/);
  t.regex(svg, /<title>Object#alpha - \/app\/lib\/work\.rb \(9 samples,/);
});

test('collapsed round-trips through inferno', (t) => {
  const lines = collapsedLines(fixedProfile().stacks(), {
    states: ALL_STATES,
  });
  const svg = loadNative().renderFlamegraph(lines, 'round trip');
  // inferno's root frame sums the counts of every line it accepted.
  t.regex(svg, new RegExp(`all \\(${FIXED_ALL_SAMPLES} samples, 100%\\)`));
  t.regex(svg, /Kernel#sleep - unknown \(3 samples,/);
});

test('inferno rejects a malformed line', (t) => {
  const error = t.throws(() =>
    loadNative().renderFlamegraph(['<main>;Object#alpha'], 'bad'),
  );
  t.is((error as { code?: string }).code, 'ERR_INVALID_ARGUMENT');
});

test('collapsed is speedscope folded input', (t) => {
  const text = fixedProfile().toCollapsed();
  const stacks = importFoldedLikeSpeedscope(text);
  t.not(stacks, undefined);
  const total = (stacks ?? []).reduce((sum, stack) => sum + stack.count, 0);
  t.is(total, FIXED_RUNNING_SAMPLES);
  t.true(
    (stacks ?? []).some(
      (stack) =>
        stack.frames.join('|') ===
        'block in Worker#run - /app/lib/worker.rb|Object#alpha - /app/lib/work.rb',
    ),
  );
});

test('speedscope matches the schema', (t) => {
  for (const options of [{}, { lines: true }, { states: ALL_STATES }]) {
    const file = JSON.parse(
      JSON.stringify(fixedProfile().toSpeedscope(options)),
    );
    t.deepEqual(speedscopeProblems(file), [], JSON.stringify(options));
  }
});

test('speedscope weighs samples by period', (t) => {
  const file = fixedProfile().toSpeedscope();
  t.is(file.profiles.length, 2);
  const [main, worker] = file.profiles;
  t.is(main.name, 'pid 4242, tid 4242');
  t.is(worker.name, 'worker (pid 4242, tid 4250)');
  t.is(main.unit, 'nanoseconds');
  // 18 samples of the main thread at 100 Hz: 10 ms each.
  t.is(main.endValue, 18 * 10_000_000);
  t.is(
    main.weights.reduce((sum, weight) => sum + weight, 0),
    main.endValue,
  );
  t.is(worker.endValue, 3 * 10_000_000);
  t.is(file.activeProfileIndex, 0);
});

test('speedscope frames keep lines on request', (t) => {
  const file = fixedProfile().toSpeedscope({ lines: true });
  const alpha = file.shared.frames.filter(
    (frame) => frame.name === 'Object#alpha',
  );
  t.deepEqual(alpha.map((frame) => frame.line).sort(), [10, 11]);
  t.true(alpha.every((frame) => frame.file === '/app/lib/work.rb'));
});

test('speedscope stacks are outermost first', (t) => {
  const file = fixedProfile().toSpeedscope();
  const names = file.profiles[1].samples.map((stack) =>
    stack.map((index) => file.shared.frames[index].name),
  );
  t.deepEqual(names, [
    ['block in Worker#run', 'Object#alpha'],
    ['block in Worker#run', 'Object#beta'],
  ]);
});
