// The raw recording format without a live target: batches in the addon's
// shape go through the writer, and the reader must rebuild the same
// profile from any prefix of the file.

import fs from 'node:fs';
import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import {
  FileAccessError,
  InvalidRecordingError,
  readRecording,
  type Profile,
} from 'rbprof';
import { ProfileData } from '../dist/profile/data';
import { decodeBatch, Profile as ProfileClass } from '../dist/profile/profile';
import { HEADER_PREFIX } from '../dist/recording/format';
import { RawRecordingFileWriter } from '../dist/recording/writer';
import { makeBatch, type BatchSpec } from './helpers/batches';
import { tempDir } from './helpers/processes';

const TARGET = {
  pid: 100,
  rubyVersion: '3.1.2',
  layoutVersion: '3.1.0',
  layoutVerified: true,
  rubyBinary: '/usr/lib/libruby.so.3.1',
};
const START_TIME_MS = Date.UTC(2026, 11, 4, 16, 5, 3, 120);

/** Three batches with threads, states, a warning and a function that
 * repeats the name and path of another. */
const BATCHES: BatchSpec[] = [
  {
    functions: [
      [0, '<main>'],
      [1, 'Object#work'],
      [2, 'Integer#times', '/app/lib.rb'],
    ],
    threads: [[0, 'main']],
    samples: [
      { stack: [0, 1], lines: [3, 10], timeNs: 5_000_000 },
      { stack: [0, 1, 2], lines: [3, 11, 0], timeNs: 15_000_000 },
    ],
    stats: { taken: 2, threadSamples: 2 },
  },
  {
    functions: [
      [3, 'Object#sleepy'],
      [4, 'Object#work'],
    ],
    threads: [[1, 'worker']],
    samples: [
      { stack: [0, 3], thread: 1, state: 2, timeNs: 25_000_000 },
      { stack: [0, 4], timeNs: 25_000_000 },
      { stack: [0, 1, 2], lines: [3, 11, 0], timeNs: 35_000_000 },
    ],
    stats: { taken: 4, late: 1, threadSamples: 5 },
    warnings: ['reading thread 1 failed once'],
  },
  {
    samples: [{ stack: [0, 1], lines: [3, 10], timeNs: 45_000_000 }],
    stats: { taken: 5, late: 1, failed: 1, threadSamples: 6 },
  },
];

interface Written {
  readonly file: string;
  /** The profile as `record()` would return it. */
  readonly profile: Profile;
  readonly warnings: string[];
}

/**
 * Feeds `specs` through profile data and the writer as a recording does,
 * and returns the file and the profile that recording would end with.
 */
function writeRecording(
  t: ExecutionContext,
  specs: BatchSpec[],
  options: { maxBytes?: number; finish?: boolean } = {},
): Promise<Written> {
  const file = path.join(tempDir(t, 'raw'), 'recording.raw.jsonl');
  const warnings: string[] = [];
  const writer = new RawRecordingFileWriter({
    path: file,
    maxBytes: options.maxBytes ?? 1 << 30,
    startTime: new Date(START_TIME_MS),
    rateHz: 99,
    idle: true,
    target: TARGET,
    onWarning: (message) => warnings.push(message),
  });
  const data = new ProfileData();
  for (const spec of specs) {
    const batch = makeBatch(spec);
    const added = data.add(batch);
    writer.write({
      samples: decodeBatch(data, batch, added),
      stats: { ...batch.stats },
      warnings: batch.warnings.slice(),
      processes: [],
    });
  }
  const recorded = new ProfileClass({
    target: TARGET,
    data,
    stats: data.stats,
    durationSeconds: 0.05,
    rateHz: 99,
    startTimeMs: START_TIME_MS,
    end: { reason: 'duration' },
  });
  // The declared Profile differs from the class in its private members.
  const profile = recorded as unknown as Profile;
  if (options.finish === false) {
    writer.close();
    return Promise.resolve({ file, profile, warnings });
  }
  return writer.finish(recorded).then(() => ({ file, profile, warnings }));
}

/** Returns a profile's contents as plain data, for deepEqual. */
function contents(profile: Profile) {
  return {
    target: profile.target,
    stats: profile.stats,
    end: profile.end,
    rateHz: profile.rateHz,
    startTimeMs: profile.startTimeMs,
    functions: profile.functions,
    threads: profile.threads,
    warnings: profile.warnings,
    stacks: [...profile.stacks()],
  };
}

test('round trip keeps the profile', async (t) => {
  const written = await writeRecording(t, BATCHES);
  const read = await readRecording(written.file);
  t.deepEqual(contents(read.profile), contents(written.profile));
  t.deepEqual(read.warnings, []);
  t.is(read.droppedBytes, 0);
  t.is(read.droppedRecords, 0);
  t.true(read.complete);
  t.is(read.startTime?.getTime(), START_TIME_MS);
  t.is(read.rateHz, 99);
  t.is(
    read.profile.toSummary({ states: ['running', 'blocked'] }),
    written.profile.toSummary({ states: ['running', 'blocked'] }),
  );
});

test('file starts with the header', async (t) => {
  const { file } = await writeRecording(t, BATCHES);
  const text = fs.readFileSync(file, 'utf8');
  t.true(text.startsWith(HEADER_PREFIX), text.slice(0, 80));
  t.true(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  t.is(JSON.parse(lines[0]).version, 1);
  t.is(JSON.parse(lines.at(-1)!).type, 'end');
  // Functions and threads are written once, before their first sample.
  const defined = lines.slice(1).map((line) => JSON.parse(line));
  t.is(defined.filter((record) => record.type === 'thread').length, 2);
  t.is(defined.filter((record) => record.type === 'sample').length, 6);
});

test('cut at every byte still reads', async (t) => {
  const { file, profile } = await writeRecording(t, BATCHES);
  const bytes = fs.readFileSync(file);
  const cut = path.join(path.dirname(file), 'cut.raw.jsonl');
  let previousSamples = 0;
  for (let length = 0; length < bytes.length; length++) {
    fs.writeFileSync(cut, bytes.subarray(0, length));
    const read = await readRecording(cut);
    const lastNewline = bytes.subarray(0, length).lastIndexOf(0x0a);
    const intact = lastNewline + 1;
    t.is(read.droppedBytes, length - intact, `cut at ${length}`);
    t.is(read.droppedRecords, length > intact ? 1 : 0, `cut at ${length}`);
    t.false(read.complete, `cut at ${length}`);
    t.true(read.warnings.length > 0, `cut at ${length}`);
    t.true(
      read.profile.sampleCount >= previousSamples,
      `cut at ${length}: ${read.profile.sampleCount} samples, fewer than before`,
    );
    previousSamples = read.profile.sampleCount;
  }
  t.is(previousSamples, profile.sampleCount);
});

test('cut file warns with bytes dropped', async (t) => {
  const { file } = await writeRecording(t, BATCHES);
  const bytes = fs.readFileSync(file);
  const secondSample = bytes.indexOf(
    '{"type":"sample"',
    bytes.indexOf('sample') + 1,
  );
  fs.writeFileSync(file, bytes.subarray(0, secondSample + 20));
  const read = await readRecording(file);
  t.is(read.profile.sampleCount, 1);
  t.is(read.droppedBytes, 20);
  t.is(read.warnings.length, 2);
  t.regex(
    read.warnings[0],
    /is cut short: dropped the incomplete last record \(20 bytes from byte \d+\)/,
  );
  t.true(read.warnings[0].startsWith(file));
  t.regex(read.warnings[1], /has no end record/);
});

test('cut header yields an empty profile', async (t) => {
  const { file } = await writeRecording(t, BATCHES);
  const bytes = fs.readFileSync(file);
  for (const length of [0, 5, HEADER_PREFIX.length + 3, bytes.indexOf(0x0a)]) {
    fs.writeFileSync(file, bytes.subarray(0, length));
    const read = await readRecording(file);
    t.is(read.profile.sampleCount, 0, `cut at ${length}`);
    t.is(read.droppedBytes, length);
    t.is(read.startTime, undefined);
    t.is(read.warnings.length, 1);
  }
});

test('recording without end warns', async (t) => {
  const { file } = await writeRecording(t, BATCHES, { finish: false });
  const read = await readRecording(file);
  t.is(read.profile.sampleCount, 6);
  t.is(read.droppedBytes, 0);
  t.false(read.complete);
  t.deepEqual(read.warnings, [
    `${file} has no end record because rbprof stopped before it finished ` +
      'the file (killed or crashed), so the profile covers only the ' +
      'samples of the first 0.0 s',
  ]);
  // Without an end record, the last sample time is the duration.
  t.is(read.profile.stats.durationSeconds, 0.045);
  t.is(read.profile.end, undefined);
});

const INVALID_RECORDS: Array<[string, string, RegExp]> = [
  ['broken JSON', '{"type":"sample","time":', /not valid JSON/],
  ['unknown type', '{"type":"bogus"}', /unknown record type "bogus"/],
  ['array', '[1,2]', /must be a JSON object/],
  [
    'undefined function',
    '{"type":"sample","time":1,"thread":0,"state":0,"frames":[[99,1]]}',
    /uses function 99, which no earlier record defines/,
  ],
  [
    'undefined thread',
    '{"type":"sample","time":1,"thread":7,"state":0,"frames":[]}',
    /uses thread 7/,
  ],
  [
    'state out of range',
    '{"type":"sample","time":1,"thread":0,"state":3,"frames":[]}',
    /state 3 is not an index/,
  ],
  [
    'bad frame',
    '{"type":"sample","time":1,"thread":0,"state":0,"frames":[[1]]}',
    /\[function id, line\] pair/,
  ],
  [
    'duplicate function',
    '{"type":"function","id":0,"name":"x","path":"y","kind":"ruby"}',
    /function 0 is defined twice/,
  ],
  ['negative stats', '{"type":"stats","taken":-1}', /taken must be an integer/],
];

for (const [name, record, message] of INVALID_RECORDS) {
  test(`invalid record: ${name}`, async (t) => {
    const { file } = await writeRecording(t, BATCHES);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    // After the header and the first definitions, before the end.
    const index = 5;
    lines.splice(index, 0, record);
    fs.writeFileSync(file, lines.join('\n'));
    const offset = Buffer.byteLength(lines.slice(0, index).join('\n')) + 1;

    const error = await t.throwsAsync(readRecording(file), {
      instanceOf: InvalidRecordingError,
    });
    t.is(error?.code, 'ERR_INVALID_RECORDING');
    t.is(error?.path, file);
    t.is(error?.offset, offset);
    t.true(
      error?.message.startsWith(`${file}: invalid record at byte ${offset}: `),
      error?.message,
    );
    t.regex(error?.message ?? '', message);
  });
}

test('record after end is invalid', async (t) => {
  const { file } = await writeRecording(t, BATCHES);
  const size = fs.statSync(file).size;
  fs.appendFileSync(file, '{"type":"warning","message":"late"}\n');
  const error = await t.throwsAsync(readRecording(file), {
    instanceOf: InvalidRecordingError,
  });
  t.is(error?.offset, size);
  t.regex(error?.message ?? '', /a record after the end record/);
});

test('foreign file is rejected at byte 0', async (t) => {
  const dir = tempDir(t, 'raw');
  const cases: Array<[string, string | Buffer]> = [
    ['text', 'hello world\n'],
    ['json', '{"format":"other","version":1}\n'],
    ['binary without newline', Buffer.alloc(4096, 0xab)],
    ['gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00])],
  ];
  for (const [name, content] of cases) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    const error = await t.throwsAsync(readRecording(file), {
      instanceOf: InvalidRecordingError,
    });
    t.is(error?.offset, 0, name);
    t.is(
      error?.message,
      `${file} is not an rbprof raw recording: the header at byte 0 does ` +
        `not start with ${HEADER_PREFIX}`,
    );
  }
});

test('newer format version is rejected', async (t) => {
  const file = path.join(tempDir(t, 'raw'), 'v2.raw.jsonl');
  fs.writeFileSync(file, `${HEADER_PREFIX}2,"startTime":"x"}\n`);
  const error = await t.throwsAsync(readRecording(file), {
    instanceOf: InvalidRecordingError,
  });
  t.is(error?.offset, 0);
  t.regex(
    error?.message ?? '',
    /format version 2, but this rbprof reads only version 1/,
  );
});

test('missing file is a file access error', async (t) => {
  const file = path.join(tempDir(t, 'raw'), 'missing.raw.jsonl');
  const error = await t.throwsAsync(readRecording(file), {
    instanceOf: FileAccessError,
  });
  t.is(error?.code, 'ERR_FILE_ACCESS');
  t.is(error?.path, file);
  t.regex(error?.message ?? '', /ENOENT/);
});

test('size limit stops the file', async (t) => {
  const full = await writeRecording(t, BATCHES);
  const fullSize = fs.statSync(full.file).size;
  const maxBytes = Math.floor(fullSize / 2);
  const { file, warnings } = await writeRecording(t, BATCHES, { maxBytes });

  const text = fs.readFileSync(file, 'utf8');
  const lines = text.trimEnd().split('\n');
  t.deepEqual(JSON.parse(lines.at(-1)!), { type: 'limit', maxBytes });
  const beforeLimit = Buffer.byteLength(text) - lines.at(-1)!.length - 1;
  t.true(beforeLimit <= maxBytes, `${beforeLimit} bytes before the limit`);
  t.is(warnings.length, 1);
  t.regex(warnings[0], /reached its size limit/);

  const read = await readRecording(file);
  t.true(read.profile.sampleCount > 0);
  t.true(read.profile.sampleCount < full.profile.sampleCount);
  t.is(read.warnings.length, 1);
  t.regex(read.warnings[0], /stopped at its size limit of \d+ bytes/);
});
