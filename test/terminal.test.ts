// `rbprof record` in a real terminal: tmux runs the CLI, capture-pane
// reads the screen. The live summary must appear while recording and give
// way to the final table.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import test from 'ava';

import { CLI, startWorkload } from './helpers/processes';

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls the pane until `text` shows, or gives up after `timeoutMs`. */
async function waitForScreen(
  session: string,
  text: string,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let screen = '';
  while (Date.now() < deadline) {
    screen = tmux('capture-pane', '-p', '-t', session);
    if (screen.includes(text)) {
      return screen;
    }
    await sleep(100);
  }
  return screen;
}

test.serial('live summary in a terminal', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  const workload = await startWorkload(t, 'known_split.rb');
  const session = `rbprof-test-${process.pid}`;
  const folder = mkdtempSync(path.join(tmpdir(), 'rbprof-terminal-'));
  const stdoutFile = path.join(folder, 'stdout');
  // stdout goes to a file, so the pane shows only what goes to stderr.
  const command = `${process.execPath} ${CLI} record --pid ${workload.pid} --top 5 > ${stdoutFile}; sleep 30`;
  tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', command);
  t.teardown(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // The session may have ended already.
    }
    rmSync(folder, { recursive: true, force: true });
  });

  const live = await waitForScreen(session, 'Object#alpha', 10_000);
  t.regex(live, /Time since start: \d+s\. Press Ctrl\+C to stop\./);
  t.true(live.includes('Summary of profiling data so far:'), live);
  t.true(live.includes('% self  % total  name'), live);
  const rows = live.split('\n').filter((line) => / - \S/.test(line));
  t.true(rows.length <= 5, `more than --top rows:\n${live}`);
  for (const line of live.split('\n')) {
    t.true(line.length <= 100, `line wider than the terminal: ${line}`);
  }

  tmux('send-keys', '-t', session, 'C-c');
  const after = await waitForScreen(session, 'Samples:', 10_000);
  t.regex(after, /Samples: \d+ taken, \d+ late, \d+ failed/);
  t.false(after.includes('Summary of profiling data so far:'), after);

  const table = readFileSync(stdoutFile, 'utf8');
  t.true(table.startsWith('% self  % total  name\n'), table);
  // With --top 5, rows that were a leaf once or twice (schedule, beta)
  // can push alpha, which is never a leaf, out of the table; spin_until
  // is the leaf of most samples.
  t.true(table.includes('Object#spin_until'), table);
  t.false(table.includes('Time since start'), table);
});
