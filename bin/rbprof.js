#!/usr/bin/env node
'use strict';

const { run } = require('../dist/cli/run.js');

run(process.argv).then((code) => {
  process.exitCode = code;
});
