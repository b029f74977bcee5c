#!/usr/bin/env node
// Profiles examples/known_split.rb for a few seconds with `rbprof record`
// and prints its summary. The script spends 60 % of its time in `alpha`,
// 30 % in `beta` and 10 % in `gamma`, which the % total column shows.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const { createInterface } = require('node:readline');

const ROOT = path.resolve(__dirname, '..');
const SECONDS = '3';

function waitForReady(ruby) {
  return new Promise((resolve, reject) => {
    createInterface({ input: ruby.stdout }).on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match !== null) {
        resolve(Number(match[1]));
      }
    });
    ruby.once('error', reject);
    ruby.once('exit', (code) =>
      reject(new Error(`ruby exited with code ${code} before it was ready`)),
    );
  });
}

async function main() {
  const ruby = spawn('ruby', [path.join(__dirname, 'known_split.rb')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const pid = await waitForReady(ruby);
    const rbprof = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'rbprof.js'),
        'record',
        '--pid',
        String(pid),
        '--duration',
        SECONDS,
      ],
      { stdio: 'inherit' },
    );
    const [code] = await new Promise((resolve) =>
      rbprof.once('exit', (...result) => resolve(result)),
    );
    return code ?? 1;
  } finally {
    ruby.kill('SIGKILL');
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`demo: ${error.message}`);
    process.exitCode = 1;
  },
);
