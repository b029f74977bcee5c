#!/usr/bin/env node
'use strict';
// Builds dist-sea/rbprof, the CLI as one executable file: a copy of the
// running Node binary with the bundled CLI and the native addon injected as
// a single executable application (SEA). Needs `npm run build` first.
//
// Usage: node tools/sea/build.js   (npm run build:sea)

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { bundle } = require('./bundle');

const ROOT = path.resolve(__dirname, '../..');
const OUT_DIR = path.join(ROOT, 'dist-sea');
const CONFIG = path.join(__dirname, 'sea-config.json');
const ENTRY = path.join(ROOT, 'dist/cli/run.js');
const ADDON = path.join(ROOT, 'crates/rbprof-node/rbprof.linux-x64-gnu.node');
/** The napi-rs loader, which picks an addon file by platform. The
 * executable loads its embedded addon through `setAddonLoader` instead. */
const ADDON_LOADER = path.join(ROOT, 'crates/rbprof-node/index.js');
/** The fuse string that Node's binary carries to mark SEA support (Node's
 * "Single executable applications" documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function fail(message) {
  console.error(`build-sea: error: ${message}`);
  process.exit(1);
}

function log(message) {
  console.error(`build-sea: ${message}`);
}

/** Rejects a build that cannot work before it takes any time. */
function checkPrerequisites() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    fail(`builds only on x86_64 Linux, not ${process.platform}/${process.arch}`);
  }
  // SEA assets (`sea.getRawAsset`) exist from Node 20.12 on.
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 12)) {
    fail(`needs Node 20.12 or later for SEA assets, not ${process.version}`);
  }
  for (const file of [ENTRY, ADDON]) {
    if (!fs.existsSync(file)) {
      fail(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first`);
    }
  }
  if (!fs.readFileSync(process.execPath).includes(SEA_FUSE)) {
    fail(`${process.execPath} was built without SEA support (no ${SEA_FUSE})`);
  }
}

/** Strips Node's symbols and debug info from the copy when binutils'
 * strip is installed; the executable works either way. */
function stripBinary(file) {
  const result = spawnSync('strip', [file], { stdio: 'inherit' });
  if (result.error?.code === 'ENOENT') {
    log('strip not found (binutils): the executable keeps Node\'s symbols');
  } else if (result.status !== 0) {
    fail(`strip ${file} failed`);
  }
}

async function main() {
  checkPrerequisites();
  fs.mkdirSync(OUT_DIR, { recursive: true });

  const main = path.join(OUT_DIR, 'main.js');
  fs.writeFileSync(
    main,
    bundle({ root: ROOT, entry: ENTRY, omitted: [ADDON_LOADER] }),
  );
  log(`bundled the CLI into ${path.relative(ROOT, main)}`);

  execFileSync(process.execPath, ['--experimental-sea-config', CONFIG], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  const blob = path.join(OUT_DIR, 'sea-prep.blob');

  const partial = path.join(OUT_DIR, 'rbprof.partial');
  fs.rmSync(partial, { force: true });
  fs.copyFileSync(process.execPath, partial);
  fs.chmodSync(partial, 0o755);
  stripBinary(partial);

  // postject's ELF writer prints warnings about note sections that it
  // cannot name; the injected executable runs regardless.
  const { inject } = require('postject');
  await inject(partial, 'NODE_SEA_BLOB', fs.readFileSync(blob), {
    sentinelFuse: SEA_FUSE,
  });
  log(
    "postject's warnings about note sections above are expected and harmless",
  );

  const output = path.join(OUT_DIR, 'rbprof');
  fs.renameSync(partial, output);
  const mib = (fs.statSync(output).size / 2 ** 20).toFixed(1);
  log(`wrote ${path.relative(ROOT, output)} (${mib} MiB, Node ${process.version})`);
}

main().catch((error) => fail(error.stack ?? String(error)));
