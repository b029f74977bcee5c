#!/usr/bin/env node
// Runs `rbprof sidecar` against an application whose processes, threads
// and stacks keep changing, scrapes it without pause and pushes to a
// receiver on loopback, and prints the sidecar's memory over time.
//
//   npm run bench:sidecar [-- SECONDS [ROTATE_SECONDS]]
//
// SECONDS is the length of the run (180 by default) and ROTATE_SECONDS
// the sidecar's --rotate (60 by default, so that a default run replaces
// its recordings twice). RUBY=/path/to/ruby picks the interpreter. The
// sidecar reads another process's memory, so run it as root or allow
// ptrace of non-child processes (kernel.yama.ptrace_scope=0).
//
// Every 10 s it prints the resident set size (VmRSS of /proc/PID/status)
// and the JavaScript heap in use (from /metrics). At the end it prints
// the growth ratio: the maximum RSS of the second half of the run over
// that of the first half. The first half contains the start, and garbage
// collection makes RSS rise and fall, so a ratio near 1 means the memory
// levelled off, while a leak shows as a ratio that grows with the run.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(HERE, '..', 'bin', 'rbprof.js');
const WORKLOAD = path.join(HERE, 'workloads', 'churn.rb');
const RUBY = process.env.RUBY ?? 'ruby';
const SECONDS = Number(process.argv[2] ?? 180);
const ROTATE_SECONDS = Number(process.argv[3] ?? 60);
/** Scrapes open at any time, each for SCRAPE_SECONDS. */
const CONCURRENT_SCRAPES = 2;
const SCRAPE_SECONDS = 5;
const PUSH_INTERVAL_SECONDS = 5;
const REPORT_EVERY_MS = 10_000;

if (!(SECONDS >= 20) || !(ROTATE_SECONDS > 0)) {
  console.error(
    'usage: sidecar-soak.mjs [SECONDS [ROTATE_SECONDS]], SECONDS at least 20',
  );
  process.exit(2);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a child and resolves with it once a stream line matches. */
function startUntil(command, args, stream, pattern) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = createInterface({ input: child[stream] });
  return new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      const match = pattern.exec(line);
      if (match !== null) {
        resolve({ child, match, lines });
      }
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`${command} exited with ${code} before it was ready`)),
    );
  });
}

/** Sends a GET request and returns the status and the body's size. */
function get(url) {
  return new Promise((resolve) => {
    http
      .get(url, (response) => {
        let bytes = 0;
        let text = '';
        response.on('data', (chunk) => {
          bytes += chunk.length;
          if (text.length < 1 << 20) {
            text += chunk.toString('latin1');
          }
        });
        response.on('end', () =>
          resolve({ status: response.statusCode, bytes, text }),
        );
      })
      .on('error', () => resolve({ status: 0, bytes: 0, text: '' }));
  });
}

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
}

function metricValue(text, name) {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? Number.NaN : Number(match[1]);
}

const mib = (kib) => (kib / 1024).toFixed(1);

async function main() {
  const receiver = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      pushes++;
      response.end();
    });
  });
  let pushes = 0;
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const pushUrl = `http://127.0.0.1:${receiver.address().port}`;

  const app = await startUntil(
    RUBY,
    [WORKLOAD, '2', '20'],
    'stdout',
    /^ready (\d+)$/,
  );
  const appPid = Number(app.match[1]);
  const sidecar = await startUntil(
    process.execPath,
    [
      CLI,
      'sidecar',
      '--listen',
      '127.0.0.1:0',
      '--pid',
      String(appPid),
      '--rotate',
      String(ROTATE_SECONDS),
      '--push',
      pushUrl,
      '--push-interval',
      String(PUSH_INTERVAL_SECONDS),
    ],
    'stderr',
    /"msg":"sidecar started".*"port":(\d+)/,
  );
  // The sidecar logs a line per scrape, push failure and worker; only the
  // errors are shown.
  let errors = 0;
  sidecar.lines.on('line', (line) => {
    if (line.includes('"level":"error"')) {
      errors++;
      if (errors <= 5) {
        console.error(line);
      }
    }
  });
  const base = `http://127.0.0.1:${sidecar.match[1]}`;

  console.log(
    `sidecar ${sidecar.child.pid} profiling ${RUBY} ${path.basename(WORKLOAD)} ` +
      `(pid ${appPid}) for ${SECONDS} s: ${CONCURRENT_SCRAPES} scrapes of ` +
      `${SCRAPE_SECONDS} s at a time, a push every ${PUSH_INTERVAL_SECONDS} s, ` +
      `--rotate ${ROTATE_SECONDS}`,
  );
  console.log(
    'time s   RSS MiB   heap MiB   scrapes ok   scrapes failed   pushes',
  );

  const deadline = Date.now() + SECONDS * 1000;
  const scrapes = { ok: 0, failed: 0 };
  const scraper = async () => {
    while (Date.now() < deadline) {
      const result = await get(
        `${base}/debug/pprof/profile?seconds=${SCRAPE_SECONDS}`,
      );
      if (result.status === 200 && result.bytes > 0) {
        scrapes.ok++;
      } else {
        scrapes.failed++;
        await sleep(1000);
      }
    }
  };
  const scrapers = Array.from({ length: CONCURRENT_SCRAPES }, scraper);

  const started = Date.now();
  const rows = [];
  while (Date.now() < deadline) {
    await sleep(Math.min(REPORT_EVERY_MS, deadline - Date.now()));
    const seconds = Math.round((Date.now() - started) / 1000);
    const rss = rssKiB(sidecar.child.pid);
    const metrics = await get(`${base}/metrics`);
    const heap = metricValue(metrics.text, 'nodejs_heap_size_used_bytes');
    rows.push({ seconds, rss });
    console.log(
      `${String(seconds).padStart(6)}   ${mib(rss).padStart(7)}   ` +
        `${mib(heap / 1024).padStart(8)}   ${String(scrapes.ok).padStart(10)}   ` +
        `${String(scrapes.failed).padStart(14)}   ${String(pushes).padStart(6)}`,
    );
  }
  await Promise.all(scrapers);

  const maxRss = (part) => Math.max(...part.map((row) => row.rss));
  const half = Math.ceil(rows.length / 2);
  const first = maxRss(rows.slice(0, half));
  const second = maxRss(rows.slice(half));
  console.log(
    `growth: max RSS ${mib(second)} MiB in the second half / ` +
      `${mib(first)} MiB in the first half = ${(second / first).toFixed(2)}; ` +
      `last RSS ${mib(rows[rows.length - 1].rss)} MiB; ` +
      `${errors} error lines in the log`,
  );

  sidecar.child.kill('SIGTERM');
  await new Promise((resolve) => sidecar.child.once('exit', resolve));
  app.child.kill('SIGTERM');
  receiver.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
