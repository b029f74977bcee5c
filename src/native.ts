// Loads the addon built from crates/rbprof-node. Its types come from the
// declarations that `napi build` generates next to the loader, so a change
// in the Rust binding that the TypeScript does not follow fails to compile.

import type * as Binding from '../crates/rbprof-node/index';

export type NativeBinding = typeof Binding;
export type NativeSampler = Binding.NativeSampler;
export type NativeBatch = Binding.NativeBatch;
export type StartOptions = Binding.StartOptions;
export type NativeSnapshot = Binding.NativeSnapshot;

let binding: NativeBinding | undefined;

/** Loads the addon on first use, so that code which only reads profiles
 * does not need it. */
export function loadNative(): NativeBinding {
  if (binding === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require('../crates/rbprof-node/index.js') as NativeBinding;
  }
  return binding;
}
