// Garbage collection in a real allocation-heavy program: the
// `(garbage collection)` frame shows in the summary and in the formats'
// consumers, and a frame without a path prints as its name alone.

import test, { type ExecutionContext } from 'ava';

import { record, type Profile } from 'rbprof';
import {
  CALLGRIND_ANNOTATE,
  GO,
  runTool,
  whenFound,
  writeTemp,
} from './helpers/consumers';
import { startWorkload } from './helpers/processes';

const GC = '(garbage collection)';

let recorded: Promise<Profile> | undefined;

/** Records test/workloads/alloc.rb once for all tests of this file. */
function recording(t: ExecutionContext): Promise<Profile> {
  recorded ??= (async () => {
    const workload = await startWorkload(t, 'alloc.rb');
    const active = await record({ pid: workload.pid, durationSeconds: 1.5 });
    return active.done;
  })();
  return recorded;
}

test.serial('summary shows garbage collection', async (t) => {
  const profile = await recording(t);
  const row = profile.rows().find((r) => r.function.name === GC);
  t.truthy(row, profile.toSummary());
  t.is(row?.function.kind, 'synthetic');
  t.true((row?.selfPercent ?? 0) > 0);
  t.regex(
    profile.toSummary(),
    /^ +\d+\.\d\d +\d+\.\d\d {2}\(garbage collection\)$/m,
  );
  t.true(profile.toCollapsed().includes(`;${GC} `));
});

whenFound(CALLGRIND_ANNOTATE, 'callgrind_annotate', test).serial(
  'callgrind with garbage collection reads cleanly',
  async (t) => {
    const profile = await recording(t);
    const file = writeTemp(t, 'gc.callgrind', profile.toCallgrind());
    const result = runTool(t, CALLGRIND_ANNOTATE, [file]);
    t.is(result.stderr, '');
    t.true(result.stdout.includes(GC), result.stdout);
  },
);

whenFound(GO, 'go', test).serial('pprof with garbage collection', async (t) => {
  const profile = await recording(t);
  const file = writeTemp(t, 'gc.pb.gz', profile.toPprof());
  const result = runTool(t, GO, ['tool', 'pprof', '-top', file]);
  t.true(result.stdout.includes(GC), result.stdout);
});
