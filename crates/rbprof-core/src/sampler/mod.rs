//! The sampler: a native thread per target that reads every Ruby thread's
//! stack on an absolute schedule and hands batches to the caller.

use std::time::Duration;

use crate::error::Result;
use crate::sample::Batch;

/// Options of one recording.
#[derive(Clone, Debug)]
pub struct SamplerOptions {
    pub pid: i32,
    /// Samples per second.
    pub rate_hz: f64,
    /// Also record threads that are not running on a CPU.
    pub idle: bool,
    /// Use the layout of this Ruby version instead of the detected one.
    pub force_version: Option<String>,
}

impl SamplerOptions {
    /// Returns the defaults: 99 Hz, on-CPU samples only.
    pub fn new(pid: i32) -> Self {
        SamplerOptions {
            pid,
            rate_hz: 99.0,
            idle: false,
            force_version: None,
        }
    }
}

/// What the sampler found when it opened the target.
#[derive(Clone, Debug)]
pub struct TargetInfo {
    pub pid: i32,
    /// The version string read from the target, e.g. `3.1.2`.
    pub ruby_version: String,
    /// The layout version in use (differs with `force_version`).
    pub layout_version: String,
    /// False when the layout was derived from headers but never confirmed
    /// on a live process of that version.
    pub layout_verified: bool,
    /// The file that holds the Ruby VM: the executable or libruby.
    pub ruby_binary: String,
}

/// A running sampler. Dropping it stops the thread.
pub struct Sampler {
    _private: (),
}

impl Sampler {
    /// Opens the target and starts the sampling thread.
    pub fn start(options: SamplerOptions) -> Result<Sampler> {
        let _ = options;
        todo!("sampler thread")
    }

    pub fn target(&self) -> &TargetInfo {
        todo!()
    }

    /// Waits up to `timeout` for samples. Returns `None` after the last
    /// batch (the one whose `end` is set) has been returned.
    pub fn next_batch(&self, timeout: Duration) -> Option<Batch> {
        let _ = timeout;
        todo!()
    }

    /// Stops sampling and returns everything not yet handed out, with
    /// `end` set.
    pub fn stop(&self) -> Batch {
        todo!()
    }
}
