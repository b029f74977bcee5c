//! The flame graph renderer of the core, for `Profile.toFlamegraphSvg()`.

use napi::Env;
use napi_derive::napi;

/// Renders folded stacks (`frame;frame count` lines) as an SVG flame graph
/// with a search button. Throws an `Error` with code `ERR_INVALID_ARGUMENT`
/// for a malformed line.
#[napi]
pub fn render_flamegraph(env: Env, lines: Vec<String>, title: String) -> napi::Result<String> {
    rbprof_core::flamegraph::render_flamegraph(&lines, &title)
        .map_err(|error| crate::convert_error(&env, error))
}
