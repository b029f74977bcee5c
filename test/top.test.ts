// `rbprof top` in a real terminal: tmux runs the CLI, send-keys presses
// keys and capture-pane reads the screen.

import { execFileSync } from 'node:child_process';

import test, { type ExecutionContext } from 'ava';

import {
  CLI,
  runCli,
  startWorkload,
  TEST_CACHE_HOME,
} from './helpers/processes';

/** Printed by the shell after rbprof exits, to find on the screen. */
const MARKER = 'top-exited';

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

/** Polls the pane until `matches` accepts it, or gives up after
 * `timeoutMs` and returns the last screen. */
async function waitForScreen(
  session: string,
  matches: (screen: string) => boolean,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let screen = '';
  while (Date.now() < deadline) {
    screen = tmux('capture-pane', '-p', '-t', session);
    if (matches(screen)) {
      return screen;
    }
    await sleep(100);
  }
  return screen;
}

/** Returns the function names of the table rows on a screen, top first. */
function rowNames(screen: string): string[] {
  const names = [];
  for (const line of screen.split('\n')) {
    const match = /^\s*\d+\.\d\d\s+\d+\.\d\d\s{2}(\S+) - /.exec(line);
    if (match !== null) {
      names.push(match[1]);
    }
  }
  return names;
}

/**
 * Starts `rbprof top ARGS` in a detached tmux session of 100 by 30
 * characters. The shell prints the marker and the exit code after rbprof
 * exits, then waits, so the screen stays readable.
 */
function startTop(t: ExecutionContext, args: string): string {
  const session = `rbprof-top-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const command =
    `XDG_CACHE_HOME=${TEST_CACHE_HOME} ${process.execPath} ${CLI} top ${args}; ` +
    `echo "${MARKER} $?"; sleep 60`;
  tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', command);
  t.teardown(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // The session may have ended already.
    }
  });
  return session;
}

test.serial('top shows the header and the table', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  const workload = await startWorkload(t, 'known_split.rb');
  const session = startTop(t, `--pid ${workload.pid}`);

  const screen = await waitForScreen(session, (s) =>
    s.includes('Object#alpha'),
  );
  t.true(screen.includes('Object#alpha'), screen);
  t.regex(
    screen,
    new RegExp(
      `pid ${workload.pid}  Ruby \\d+\\.\\d+\\.\\d+  99 Hz  elapsed \\d+:\\d\\d` +
        '  samples: \\d+ taken, \\d+ late, \\d+ failed',
    ),
  );
  t.true(screen.includes('sort: self'), screen);
  t.true(screen.includes('% self  % total  name'), screen);
  for (const line of screen.split('\n')) {
    t.true(line.length < 100, `line as wide as the terminal: ${line}`);
  }
  t.true(screen.trimEnd().split('\n').length <= 30, screen);
});

test.serial('top --subprocesses shows the workers', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  // The parent sleeps in Process.wait, so only its workers run Ruby code.
  const workload = await startWorkload(t, 'forking.rb', ['2']);
  const session = startTop(t, `--pid ${workload.pid} --subprocesses`);

  const screen = await waitForScreen(session, (s) =>
    s.includes('Object#worker_loop'),
  );
  t.true(screen.includes('Object#worker_loop'), screen);
});

test.serial('top sorts by total after t', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  const workload = await startWorkload(t, 'known_split.rb');
  const session = startTop(t, `--pid ${workload.pid}`);
  const bySelf = await waitForScreen(session, (s) =>
    s.includes('Object#alpha'),
  );
  t.true(bySelf.includes('sort: self'), bySelf);

  tmux('send-keys', '-t', session, 't');
  const byTotal = await waitForScreen(
    session,
    (s) => s.includes('sort: total') && s.includes('Object#alpha'),
  );
  t.true(byTotal.includes('sort: total'), byTotal);
  const totals = byTotal
    .split('\n')
    .map((line) => /^\s*\d+\.\d\d\s+(\d+\.\d\d)\s{2}/.exec(line))
    .filter((match) => match !== null)
    .map((match) => Number(match[1]));
  t.true(totals.length >= 3, byTotal);
  for (let i = 1; i < totals.length; i++) {
    t.true(totals[i - 1] >= totals[i], `not sorted by total:\n${byTotal}`);
  }
  // Object#schedule calls Object#alpha, so its total is higher.
  const names = rowNames(byTotal);
  t.true(
    names.indexOf('Object#schedule') < names.indexOf('Object#alpha'),
    byTotal,
  );

  tmux('send-keys', '-t', session, 's');
  const again = await waitForScreen(session, (s) => s.includes('sort: self'));
  t.true(again.includes('sort: self'), again);
});

test.serial('top quits on q and restores the screen', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  const workload = await startWorkload(t, 'known_split.rb');
  const session = startTop(t, `--pid ${workload.pid}`);
  const running = await waitForScreen(session, (s) =>
    s.includes('Object#alpha'),
  );
  t.true(running.includes('Object#alpha'), running);

  tmux('send-keys', '-t', session, 'q');
  const after = await waitForScreen(session, (s) => s.includes(MARKER));
  t.true(after.includes(`${MARKER} 0`), after);
  t.false(after.includes('Object#alpha'), after);
  t.false(after.includes('% self  % total  name'), after);
  t.regex(after, /Samples: \d+ taken, \d+ late, \d+ failed\./);
  const cursorVisible = tmux(
    'display-message',
    '-p',
    '-t',
    session,
    '#{cursor_flag}',
  ).trim();
  t.is(cursorVisible, '1');
  const alternate = tmux(
    'display-message',
    '-p',
    '-t',
    session,
    '#{alternate_on}',
  ).trim();
  t.is(alternate, '0');
});

test.serial('top quits on Ctrl+C', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  const workload = await startWorkload(t, 'known_split.rb');
  const session = startTop(t, `--pid ${workload.pid} --by-thread`);
  const running = await waitForScreen(session, (s) =>
    s.includes('Object#alpha'),
  );
  t.true(running.includes('by thread'), running);
  t.regex(
    running,
    /(Unnamed thread|Thread ".*") \(native id \d+\): \d+ samples/,
  );

  tmux('send-keys', '-t', session, 'C-c');
  const after = await waitForScreen(session, (s) => s.includes(MARKER));
  t.true(after.includes(`${MARKER} 0`), after);
  t.false(after.includes('Object#alpha'), after);
});

test.serial('top reports the end of the process', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  const workload = await startWorkload(t, 'known_split.rb');
  const session = startTop(t, `--pid ${workload.pid}`);
  await waitForScreen(session, (s) => s.includes('Object#alpha'));

  workload.child.kill('SIGKILL');
  const ended = await waitForScreen(session, (s) =>
    s.includes('Press any key to exit.'),
  );
  t.true(
    ended.includes(`Process ${workload.pid} ended. Press any key to exit.`),
    ended,
  );

  tmux('send-keys', '-t', session, 'x');
  const after = await waitForScreen(session, (s) => s.includes(MARKER));
  t.true(after.includes(`${MARKER} 0`), after);
  t.true(after.includes(`Process ${workload.pid} ended.`), after);
});

test('top rejects a stdout that is not a terminal', async (t) => {
  const result = await runCli(t, ['top', '--pid', String(process.pid)]);
  t.is(result.code, 2);
  t.true(
    result.stderr.includes('top requires stdout to be a terminal'),
    result.stderr,
  );
  t.is(result.stdout, '');
});

test('top reports a missing process like record', async (t) => {
  if (!hasTmux()) {
    t.log('skipping: tmux is not installed');
    t.pass();
    return;
  }
  // A pid above the kernel's maximum (2^22) names no process.
  const session = startTop(t, '--pid 99999999');
  const after = await waitForScreen(session, (s) => s.includes(MARKER));
  t.true(after.includes(`${MARKER} 3`), after);
  t.true(after.includes('rbprof: '), after);
});
