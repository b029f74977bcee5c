// Each format of a real recording of test/workloads/known_split.rb, read
// by the program it is for. The counts each program shows must equal the
// profile's own, so the checks hold whatever the split of the samples.

import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { record, type Profile, type SummaryRow } from 'rbprof';
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
import { ROOT, startWorkload } from './helpers/processes';

const SCRIPT = path.join(ROOT, 'test', 'workloads', 'known_split.rb');
const HOT = ['Object#alpha', 'Object#beta', 'Object#gamma'];

let recorded: Promise<{ profile: Profile; pid: number }> | undefined;

/**
 * Records the workload for 2 s, once for all tests of this file. The first
 * test to call it starts the workload, and its teardown kills it. The
 * others wait for the same recording.
 */
function recording(
  t: ExecutionContext,
): Promise<{ profile: Profile; pid: number }> {
  recorded ??= (async () => {
    const workload = await startWorkload(t, 'known_split.rb');
    const active = await record({ pid: workload.pid, durationSeconds: 2 });
    return { profile: await active.done, pid: workload.pid };
  })();
  return recorded;
}

/** Thread-samples in the running state, which every format counts. */
function runningSamples(profile: Profile): number {
  let count = 0;
  for (const stack of profile.stacks()) {
    if (stack.state === 'running') {
      count += stack.count;
    }
  }
  return count;
}

/** Returns a function's summary row, which the formats must agree with. */
function rowOf(profile: Profile, name: string): SummaryRow {
  const row = profile.rows().find((row) => row.function.name === name);
  if (row === undefined) {
    throw new Error(`${name} is not in the profile`);
  }
  return row;
}

const withGo = whenFound(GO, 'go (for go tool pprof)', test);
const withCallgrind = whenFound(
  CALLGRIND_ANNOTATE,
  'callgrind_annotate (valgrind)',
  test,
);
const withXmllint = whenFound(XMLLINT, 'xmllint (libxml2-utils)', test);

withGo('live pprof shows hot functions', async (t) => {
  const { profile, pid } = await recording(t);
  const total = runningSamples(profile);
  t.true(total > 0);
  const file = writeTemp(t, 'live.pb.gz', profile.toPprof());

  const top = runTool(t, GO, [
    'tool',
    'pprof',
    '-top',
    '-sample_index=samples',
    file,
  ]).stdout;
  t.regex(top, new RegExp(`Total samples = ${total} `));
  const rows = new Map(parsePprofTop(top).map((row) => [row.name, row]));
  for (const name of HOT) {
    const row = rowOf(profile, name);
    t.is(rows.get(name)?.flat, String(row.selfSamples), name);
    t.is(rows.get(name)?.cum, String(row.totalSamples), name);
  }
  t.is(rows.get('<main>')?.cum, String(rowOf(profile, '<main>').totalSamples));

  const raw = runTool(t, GO, ['tool', 'pprof', '-raw', file]).stdout;
  t.regex(raw, /^PeriodType: cpu nanoseconds$/m);
  t.regex(raw, new RegExp(`pid:\\[${pid}\\] thread_id:\\[${pid}\\]`));
  t.true(raw.includes(`Object#alpha ${SCRIPT}:`));
});

withCallgrind('live callgrind totals match', async (t) => {
  const { profile } = await recording(t);
  const file = writeTemp(t, 'callgrind.out.live', profile.toCallgrind());
  const { stdout, stderr } = runTool(t, CALLGRIND_ANNOTATE, [
    '--auto=no',
    '--inclusive=yes',
    file,
  ]);
  t.is(stderr, '');
  const { totals, rows } = parseCallgrindAnnotate(stdout);
  t.is(totals, runningSamples(profile));
  // The hot functions spin in a helper, so their cost is inclusive.
  for (const name of HOT) {
    const row = rowOf(profile, name);
    t.is(rows.get(`${SCRIPT}:${name}`), row.totalSamples, name);
  }
  t.is(
    rows.get(`${SCRIPT}:Object#schedule`),
    rowOf(profile, 'Object#schedule').totalSamples,
  );
});

withXmllint('live flamegraph is valid SVG', async (t) => {
  const { profile } = await recording(t);
  const svg = profile.toFlamegraphSvg();
  const file = writeTemp(t, 'live.svg', svg);
  const { stderr } = runTool(t, XMLLINT, ['--noout', '--nonet', file]);
  t.is(stderr, '');
  t.true(svg.includes(`all (${runningSamples(profile)} samples, 100%)`));
  for (const name of HOT) {
    t.true(svg.includes(`${name} - ${SCRIPT}`), name);
  }
  t.regex(svg, /function search\(/);
});

test('live speedscope validates', async (t) => {
  const { profile } = await recording(t);
  const file = JSON.parse(JSON.stringify(profile.toSpeedscope()));
  t.deepEqual(speedscopeProblems(file), []);
  const periodNs = Math.round(1e9 / (profile.rateHz ?? 0));
  let weight = 0;
  for (const thread of file.profiles as Array<{ weights: number[] }>) {
    weight += thread.weights.reduce((sum, w) => sum + w, 0);
  }
  t.is(weight, runningSamples(profile) * periodNs);
  const names = (file.shared.frames as Array<{ name: string; file: string }>)
    .filter((frame) => frame.file === SCRIPT)
    .map((frame) => frame.name);
  for (const name of HOT) {
    t.true(names.includes(name), name);
  }
});

test('live collapsed reads in speedscope', async (t) => {
  const { profile } = await recording(t);
  const stacks = importFoldedLikeSpeedscope(profile.toCollapsed());
  t.not(stacks, undefined);
  const total = (stacks ?? []).reduce((sum, stack) => sum + stack.count, 0);
  t.is(total, runningSamples(profile));
  t.true(
    (stacks ?? []).some((stack) =>
      stack.frames.includes(`Object#alpha - ${SCRIPT}`),
    ),
  );
});
