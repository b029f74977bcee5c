// Every format of the fixed profile, compared byte for byte with the files
// in test/golden. After an intended change of a format, regenerate them
// with `npm run bless` (or RBPROF_BLESS=1) and review the diff.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

import test from 'ava';

import {
  PROFILE_FORMATS,
  renderProfile,
  type ProfileFormat,
} from '../dist/formats';
import { encodePprof } from '../dist/formats/pprof';
import type { Profile } from '../dist/profile/profile';
import { fixedProfile } from './helpers/fixed-profile';
import { ROOT } from './helpers/processes';

const GOLDEN_DIR = path.join(ROOT, 'test', 'golden');
const BLESS = process.env.RBPROF_BLESS === '1';
const ALL_STATES = ['running', 'waiting_gvl', 'blocked'] as const;

interface GoldenCase {
  readonly format: ProfileFormat;
  readonly file: string;
  readonly render: (profile: Profile) => string | Uint8Array;
}

function viaRegistry(
  format: ProfileFormat,
  options: Parameters<typeof renderProfile>[2] = {},
): GoldenCase['render'] {
  return (profile) => renderProfile(profile, format, options);
}

const CASES: GoldenCase[] = [
  {
    format: 'summary',
    file: 'fixed.summary.txt',
    render: viaRegistry('summary'),
  },
  {
    format: 'summary-by-line',
    file: 'fixed.summary-by-line.txt',
    render: viaRegistry('summary-by-line'),
  },
  {
    format: 'collapsed',
    file: 'fixed.folded',
    render: viaRegistry('collapsed'),
  },
  {
    format: 'collapsed',
    file: 'fixed-lines-all-states.folded',
    render: viaRegistry('collapsed', { lines: true, states: ALL_STATES }),
  },
  {
    format: 'flamegraph',
    file: 'fixed.svg',
    render: viaRegistry('flamegraph'),
  },
  {
    format: 'speedscope',
    file: 'fixed.speedscope.json',
    render: viaRegistry('speedscope'),
  },
  {
    format: 'speedscope',
    file: 'fixed-lines.speedscope.json',
    render: viaRegistry('speedscope', { lines: true }),
  },
  // pprof files are gzipped; the golden files hold the protobuf inside.
  {
    format: 'pprof',
    file: 'fixed.pprof.pb',
    render: (profile) => encodePprof(profile),
  },
  {
    format: 'pprof',
    file: 'fixed-wall.pprof.pb',
    render: (profile) => encodePprof(profile, { states: ALL_STATES }),
  },
  {
    format: 'callgrind',
    file: 'fixed.callgrind',
    render: viaRegistry('callgrind'),
  },
];

for (const { file, render } of CASES) {
  test(`golden ${file}`, (t) => {
    const output = render(fixedProfile());
    const bytes =
      typeof output === 'string' ? Buffer.from(output, 'utf8') : output;
    const goldenPath = path.join(GOLDEN_DIR, file);
    if (BLESS) {
      writeFileSync(goldenPath, bytes);
      t.log(`wrote ${path.relative(ROOT, goldenPath)}`);
      t.pass();
      return;
    }
    let golden: Buffer;
    try {
      golden = readFileSync(goldenPath);
    } catch (error) {
      t.fail(`cannot read ${goldenPath} (${error}); run npm run bless`);
      return;
    }
    if (typeof output === 'string') {
      // A text diff points at the changed line.
      t.is(output, golden.toString('utf8'), `${file} changed`);
    } else {
      t.true(Buffer.from(bytes).equals(golden), `${file} changed`);
    }
  });
}

test('golden pprof is the gzip of the protobuf', (t) => {
  const profile = fixedProfile();
  const gzipped = renderProfile(profile, 'pprof');
  t.true(Buffer.isBuffer(gzipped));
  const inflated = gunzipSync(gzipped as Buffer);
  t.true(inflated.equals(Buffer.from(encodePprof(profile))));
});

test('formats are deterministic', (t) => {
  for (const { file, render } of CASES) {
    const first = Buffer.from(render(fixedProfile()));
    const second = Buffer.from(render(fixedProfile()));
    t.true(first.equals(second), file);
  }
});

test('golden files cover every format', (t) => {
  const covered = new Set(CASES.map((golden) => golden.format));
  for (const format of PROFILE_FORMATS) {
    t.true(covered.has(format), `no golden file for ${format}`);
  }
});
