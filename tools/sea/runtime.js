// The end of the single executable's main script. tools/sea/bundle.js puts
// MODULES (the module map) and ENTRY (the module id of the CLI's run.js)
// above this text. This part loads modules out of the map, loads the addon
// embedded as the SEA asset `rbprof.node`, and runs the CLI.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sea = require('node:sea');
const vm = require('node:vm');

/** The module ids of the files that the runtime calls into. */
const NATIVE_MODULE = 'dist/native.js';
const ERRORS_MODULE = 'dist/errors.js';
/** The key of the addon in the SEA config's `assets`. */
const ADDON_ASSET = 'rbprof.node';
/** The directory of every module's `__filename`. It exists on no disk, and
 * makes stack traces name the module and its line in the compiled file. */
const VIRTUAL_ROOT = '/rbprof-sea';

const cache = new Map();

function loadModule(id) {
  const cached = cache.get(id);
  if (cached !== undefined) {
    return cached.exports;
  }
  const definition = MODULES[id];
  if (definition === undefined) {
    throw new Error(`module ${id} is not in the single executable`);
  }
  const module = { id, exports: {}, loaded: false };
  cache.set(id, module);
  const filename = path.posix.join(VIRTUAL_ROOT, id);
  if (definition.kind === 'json') {
    module.exports = JSON.parse(definition.source);
  } else {
    const wrapper = vm.compileFunction(
      definition.source,
      ['exports', 'require', 'module', '__filename', '__dirname'],
      { filename },
    );
    const requireInModule = (request) =>
      requireFrom(id, definition.requests, request);
    wrapper.call(
      module.exports,
      module.exports,
      requireInModule,
      module,
      filename,
      path.posix.dirname(filename),
    );
  }
  module.loaded = true;
  return module.exports;
}

function requireFrom(id, requests, request) {
  const target = requests[request];
  if (target === undefined) {
    throw new Error(`${id} requires ${request}, which was not bundled`);
  }
  if (target.builtin !== undefined) {
    return require(target.builtin);
  }
  if (target.omitted !== undefined) {
    throw new Error(
      `${id} requires ${target.omitted}, which the single executable leaves out`,
    );
  }
  return loadModule(target.id);
}

/**
 * Writes the embedded addon to a new private directory (mode 0700, from
 * mkdtemp) under the temporary directory, loads it with `process.dlopen`
 * and removes the directory again. The loaded library stays mapped after
 * its file is removed. A process killed between the write and the removal
 * leaves the directory behind.
 */
function loadEmbeddedAddon() {
  const { FileAccessError } = loadModule(ERRORS_MODULE);
  const hint =
    'rbprof writes its native addon to the temporary directory and loads ' +
    'it from there. Set TMPDIR to a writable directory on a file system ' +
    'that is not mounted noexec. The addon needs glibc 2.34 or later.';
  let directory;
  try {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'rbprof-addon-'));
  } catch (error) {
    throw new FileAccessError(
      `cannot create a directory for the native addon in ${os.tmpdir()}: ${error.message}`,
      os.tmpdir(),
      { hint, cause: error },
    );
  }
  const file = path.join(directory, ADDON_ASSET);
  try {
    fs.writeFileSync(file, new Uint8Array(sea.getRawAsset(ADDON_ASSET)), {
      flag: 'wx',
      mode: 0o500,
    });
    const addon = { exports: {} };
    process.dlopen(addon, file);
    return addon.exports;
  } catch (error) {
    throw new FileAccessError(
      `cannot load the native addon from ${file}: ${error.message}`,
      file,
      { hint, cause: error },
    );
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

loadModule(NATIVE_MODULE).setAddonLoader(loadEmbeddedAddon);
loadModule(ENTRY)
  .run(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
