#!/usr/bin/env node
// Measures the CPU that the Node process spends per second of recording
// while samples of about 50 frames move from the sampler into JavaScript.
//
//   npm run bench:js [-- SECONDS]      (RUBY=/path/to/ruby to pick one)
//
// Starts bench/workloads/stack50.rb, then for each configuration records
// it for SECONDS (5 by default) and reads process.cpuUsage() once
// record() has resolved and again after the recording has ended. An idle stretch of the same
// length, measured first in the same process, is the baseline that is
// subtracted. process.cpuUsage() counts every thread of the process, so
// the native sampler thread's own CPU, read from /proc/self/task, is
// shown apart. The rest is the cost of the JavaScript side: polling,
// converting batches, aggregating and, with `samples()`, decoding each
// sample into objects.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { record } from 'rbprof';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WORKLOAD = path.join(HERE, 'workloads', 'stack50.rb');
const RUBY = process.env.RUBY ?? 'ruby';
const SECONDS = Number(process.argv[2] ?? 5);
/** Clock ticks per second of the times in /proc/PID/task/TID/stat. */
const CLOCK_TICKS = Number(
  execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }),
);

/**
 * The recordings to measure. With several threads, `idle` samples the
 * threads that wait for Ruby's global VM lock too, so each tick reads
 * every thread's stack.
 */
const CONFIGS = [
  { rateHz: 1000, threads: 1, idle: false },
  { rateHz: 10000, threads: 1, idle: false },
  { rateHz: 10000, threads: 4, idle: true },
];

/** Starts the workload with `threads` spinning threads; resolves to its
 * child process once the threads run. */
async function startWorkload(threads) {
  const child = spawn(RUBY, [WORKLOAD, '45', String(threads)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('ready ')) {
        resolve();
      }
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`${RUBY} exited with ${code}`)),
    );
  });
  // The extra threads start after the ready line.
  await sleep(500);
  return child;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Returns the CPU of the process in milliseconds, user and system. */
function processCpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Returns the CPU of this process's thread named `name` in
 * milliseconds, or undefined when there is none. */
function threadCpuMs(name) {
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const task = `/proc/self/task/${tid}`;
    try {
      if (fs.readFileSync(`${task}/comm`, 'utf8').trim() !== name) {
        continue;
      }
      // Fields after the name in parentheses: state is the first, and
      // utime and stime are the 12th and 13th (fields 14 and 15 of proc(5)).
      const stat = fs.readFileSync(`${task}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return undefined;
}

/** Measures one recording of `pid`; with `stream`, a loop also takes
 * every batch through `samples()`. */
async function measure(pid, config, stream) {
  const recording = await record({
    pid,
    rateHz: config.rateHz,
    idle: config.idle,
  });
  // Taken once sampling runs, so the one-time cost of attaching to the
  // target does not count.
  const before = processCpuMs();
  let streamed = 0;
  const consumed = stream
    ? (async () => {
        for await (const batch of recording.samples()) {
          streamed += batch.samples.length;
        }
      })()
    : Promise.resolve();
  await sleep(SECONDS * 1000);
  // Read before stop(), which joins the thread.
  const samplerMs = threadCpuMs(`rbprof-${pid}`.slice(0, 15)) ?? Number.NaN;
  const profile = await recording.stop();
  await consumed;
  const totalMs = processCpuMs() - before;
  return { profile, totalMs, samplerMs, streamed };
}

/** The columns of the table and their widths. */
const COLUMNS = [
  ['rate Hz', 7],
  ['threads', 7],
  ['samples()', 9],
  ['samples/s', 9],
  ['late %', 6],
  ['total ms/s', 10],
  ['sampler ms/s', 12],
  ['JS ms/s', 7],
  ['total ms/1k', 11],
  ['JS ms/1k', 8],
];

function format(value, digits = 1) {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

async function main() {
  if (!(SECONDS > 0)) {
    throw new Error(`SECONDS must be a number above 0, got ${process.argv[2]}`);
  }
  const cpus = os.cpus();
  const load = os.loadavg().map((value) => value.toFixed(2));
  console.log(
    `${cpus.length} CPUs (${cpus[0]?.model ?? 'unknown model'}), ` +
      `load average ${load.join(' ')}`,
  );
  console.log(
    `Node ${process.version}, ${RUBY}, ${SECONDS} s per run, ` +
      `stack50.rb at depth 45 (about 50 frames)`,
  );

  const idleBefore = processCpuMs();
  await sleep(SECONDS * 1000);
  const idleMsPerSecond = (processCpuMs() - idleBefore) / SECONDS;
  console.log(`idle baseline: ${format(idleMsPerSecond, 2)} ms of CPU per s\n`);

  console.log(COLUMNS.map(([title, width]) => title.padStart(width)).join(' '));
  for (const config of CONFIGS) {
    const workload = await startWorkload(config.threads);
    try {
      for (const stream of [false, true]) {
        const { profile, totalMs, samplerMs, streamed } = await measure(
          workload.pid,
          config,
          stream,
        );
        const seconds = profile.stats.durationSeconds;
        const samples = profile.sampleCount;
        if (stream && streamed !== samples) {
          console.error(`warning: streamed ${streamed} of ${samples} samples`);
        }
        const totalPerSecond = totalMs / seconds - idleMsPerSecond;
        const jsPerSecond = totalPerSecond - samplerMs / seconds;
        const late =
          profile.stats.late / (profile.stats.taken + profile.stats.late);
        const samplesPerSecond = samples / seconds;
        const row = [
          String(config.rateHz),
          String(config.threads),
          stream ? 'yes' : 'no',
          format(samplesPerSecond, 0),
          format(100 * late),
          format(totalPerSecond),
          format(samplerMs / seconds),
          format(jsPerSecond),
          format((totalPerSecond * 1000) / samplesPerSecond, 2),
          format((jsPerSecond * 1000) / samplesPerSecond, 2),
        ];
        console.log(
          row.map((cell, i) => cell.padStart(COLUMNS[i][1])).join(' '),
        );
      }
    } finally {
      workload.kill('SIGKILL');
    }
  }
}

main().catch((error) => {
  console.error(`js-cost: ${error.message}`);
  process.exitCode = 1;
});
