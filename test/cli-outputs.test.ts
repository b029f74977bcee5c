// Where `rbprof record` puts its files without a path, and how it writes
// them.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { FileAccessError } from 'rbprof';
import {
  cacheFolder,
  createCacheFolder,
  outputStem,
  replaceFile,
} from '../dist/cli/outputs';

const asRoot = process.getuid?.() === 0 ? test : test.skip;

/** Returns a user of /etc/passwd other than root whose home folder
 * exists, if there is one. */
function userWithHome(): { name: string; home: string } | undefined {
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid, , , home] = line.split(':');
    if (uid !== '0' && home !== undefined && home.startsWith('/home/')) {
      if (fs.existsSync(home)) {
        return { name: name!, home };
      }
    }
  }
  return undefined;
}

test('cache folder follows XDG_CACHE_HOME', (t) => {
  t.deepEqual(cacheFolder({ XDG_CACHE_HOME: '/var/cache/me' }), {
    path: '/var/cache/me/rbprof',
  });
});

test('cache folder defaults to ~/.cache', (t) => {
  const expected = path.join(os.homedir(), '.cache', 'rbprof');
  t.is(cacheFolder({}).path, expected);
  // A relative XDG_CACHE_HOME is invalid, so the default applies.
  t.is(cacheFolder({ XDG_CACHE_HOME: 'cache' }).path, expected);
});

asRoot("cache folder under sudo is the user's", (t) => {
  const user = userWithHome();
  if (user === undefined) {
    t.log('skipping: no user with a home folder under /home');
    t.pass();
    return;
  }
  t.deepEqual(
    cacheFolder({ SUDO_USER: user.name, SUDO_UID: '1234', SUDO_GID: '5678' }),
    {
      path: path.join(user.home, '.cache', 'rbprof'),
      owner: { uid: 1234, gid: 5678 },
    },
  );
});

asRoot('cache folder under sudo without home', (t) => {
  const folder = cacheFolder({
    SUDO_USER: 'rbprof-no-such-user',
    SUDO_UID: '1234',
    SUDO_GID: '1234',
  });
  t.is(folder.path, path.join(os.homedir(), '.cache', 'rbprof'));
  t.is(folder.owner, undefined);
});

asRoot('created cache folders go to the owner', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-owner-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const folder = path.join(root, 'a', 'b', 'rbprof');
  createCacheFolder({ path: folder, owner: { uid: 4321, gid: 8765 } });
  for (const dir of [path.join(root, 'a'), path.join(root, 'a', 'b'), folder]) {
    const stat = fs.statSync(dir);
    t.is(stat.uid, 4321, dir);
    t.is(stat.gid, 8765, dir);
  }
  // The folder that existed before keeps its owner.
  t.is(fs.statSync(root).uid, 0);
});

test('output stem has local time and pid', (t) => {
  const date = new Date(2026, 11, 4, 16, 5, 3);
  t.is(outputStem(date, 1234), 'rbprof-2026-12-04T16-05-03-1234');
});

test('replaceFile leaves no temporary file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-replace-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'profile.txt');
  replaceFile(file, 'first\n');
  replaceFile(file, Buffer.from('second\n'));
  t.is(fs.readFileSync(file, 'utf8'), 'second\n');
  t.deepEqual(fs.readdirSync(dir), ['profile.txt']);
});

test('replaceFile failure names the file', (t) => {
  const file = path.join(os.tmpdir(), 'rbprof-no-such-folder', 'x.txt');
  const error = t.throws(() => replaceFile(file, 'data'), {
    instanceOf: FileAccessError,
  });
  t.is(
    error?.message,
    `cannot write ${file}: ENOENT: no such file or directory`,
  );
  t.is(error?.path, file);
});
