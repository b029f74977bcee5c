// The CLI is built on the public API: its modules import the library only
// through the package entry point, so anything the CLI can do, an
// application that imports 'rbprof' can do too.

import fs from 'node:fs';
import path from 'node:path';

import test from 'ava';

import { ROOT } from './helpers/processes';

const CLI_SOURCES = path.join(ROOT, 'src', 'cli');

/** Modules outside src/cli that the CLI may import, and why. */
const ALLOWED = new Map([
  ['../index', 'the package entry point'],
  ['../system-errors', 'formats Node system errors; no profiling logic'],
  ['../sidecar/index', 'the sidecar server, itself built on the entry point'],
  ['../../package.json', 'the version that --version prints'],
]);

/** Returns the module specifiers of every import, export and require. */
function importsOf(source: string): string[] {
  const pattern =
    /(?:\bfrom\s+|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;
  return [...source.matchAll(pattern)].map((match) => match[1]);
}

test('cli imports only the entry point', (t) => {
  const files = fs
    .readdirSync(CLI_SOURCES)
    .filter((name) => name.endsWith('.ts'));
  t.true(files.length > 0);
  for (const name of files) {
    const source = fs.readFileSync(path.join(CLI_SOURCES, name), 'utf8');
    for (const specifier of importsOf(source)) {
      const external = !specifier.startsWith('.');
      const sibling = specifier.startsWith('./');
      t.true(
        external || sibling || ALLOWED.has(specifier),
        `src/cli/${name} imports ${specifier}; import it from '../index' ` +
          'and export it there if the CLI needs it',
      );
    }
  }
});

test('sidecar imports only the entry point', (t) => {
  const dir = path.join(ROOT, 'src', 'sidecar');
  const files = fs.readdirSync(dir).filter((name) => name.endsWith('.ts'));
  t.true(files.length > 0);
  for (const name of files) {
    const source = fs.readFileSync(path.join(dir, name), 'utf8');
    for (const specifier of importsOf(source)) {
      const builtin = specifier.startsWith('node:');
      const sibling = specifier.startsWith('./');
      t.true(
        builtin || sibling || specifier === '../index',
        `src/sidecar/${name} imports ${specifier}; the sidecar may import ` +
          "Node's built-in modules, its own modules and '../index' only",
      );
    }
  }
});

test('import pattern finds every form', (t) => {
  const source = [
    "import { a } from '../record';",
    "import type { B } from '../types';",
    "export { c } from '../formats/index';",
    "import '../side-effect';",
    "const d = require('../../package.json');",
  ].join('\n');
  t.deepEqual(importsOf(source), [
    '../record',
    '../types',
    '../formats/index',
    '../side-effect',
    '../../package.json',
  ]);
});
