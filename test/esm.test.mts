import test from 'ava';

import { formatSummary, Profile, RbprofError, record } from 'rbprof';

test('named imports work from ESM', (t) => {
  t.is(typeof record, 'function');
  t.is(typeof Profile, 'function');
  t.is(typeof RbprofError, 'function');
  t.is(formatSummary([]), '% self  % total  name\n');
});
