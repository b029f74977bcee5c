import test from 'ava';

import { supportedVersions } from 'rbprof';
import { runCli } from './helpers/processes';

test('supported versions include Ruby 3.1', (t) => {
  const ranges = supportedVersions();
  const ruby31 = ranges.find((range) => range.from.startsWith('3.1.'));
  t.truthy(ruby31);
  t.true(ruby31?.verified);
  const starts = ranges.map((range) => range.from);
  t.deepEqual(
    starts,
    [...starts].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })),
  );
});

test('CLI lists the supported versions', async (t) => {
  const result = await runCli(t, ['--supported-versions']);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^3\.1\.0 - 3\.1\.\d+$/m);
  t.is(result.stdout.trimEnd().split('\n').length, supportedVersions().length);
});
