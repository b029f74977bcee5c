#!/usr/bin/env node
// Prints what every Ruby thread of a process is doing right now: one line
// per thread with its state and the innermost frame of its stack.
//
//   node examples/snapshot.js PID
'use strict';

const { snapshot } = require('rbprof');

async function main(args) {
  const pid = Number(args[0]);
  if (!Number.isInteger(pid)) {
    console.error('usage: snapshot.js PID');
    return 2;
  }
  const result = await snapshot({ pid });
  console.log(`Process ${result.pid}, Ruby ${result.rubyVersion}`);
  for (const thread of result.threads) {
    const name = thread.name ?? '<unnamed>';
    const leaf = thread.frames.at(-1);
    let where = leaf === undefined ? '(no frames)' : leaf.name;
    if (thread.error !== undefined) {
      where = `stack not readable: ${thread.error}`;
    }
    console.log(
      `${name} (${thread.state}, ${thread.frames.length} frames): ${where}`,
    );
  }
  for (const warning of result.warnings) {
    console.error(`warning: ${warning}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`snapshot failed: ${error.message}`);
    process.exitCode = 2;
  },
);
