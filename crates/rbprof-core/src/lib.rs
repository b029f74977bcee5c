//! rbprof-core reads the Ruby stacks of a running MRI process from outside
//! it, with `process_vm_readv`, and samples them on a native thread.
//! [`take_snapshot`] reads every thread's stack once, of a running process
//! or of its ELF core file.
//!
//! ```no_run
//! use rbprof_core::{Sampler, SamplerOptions};
//! use std::time::Duration;
//!
//! let sampler = Sampler::start(SamplerOptions::new(1234)).unwrap();
//! println!("Ruby {}", sampler.target().ruby_version);
//! while let Some(batch) = sampler.next_batch(Duration::from_secs(1)) {
//!     println!("{} samples", batch.samples.len());
//!     if batch.end.is_some() {
//!         break;
//!     }
//! }
//! ```

pub mod error;
pub mod fixture;
pub mod flamegraph;
pub mod launch;
pub mod memory;
pub mod process;
pub mod ruby;
pub mod sample;
pub mod sampler;
pub mod snapshot;

pub use error::{Error, Result};
pub use sample::{
    Batch, EndReason, Frame, FrameKind, Function, ProcessEvent, ProcessEventKind, Sample, Stats,
    ThreadInfo, ThreadState,
};
pub use sampler::{Sampler, SamplerOptions, TargetInfo};
pub use snapshot::{
    take_snapshot, Snapshot, SnapshotFrame, SnapshotOptions, SnapshotTarget, ThreadSnapshot,
};
