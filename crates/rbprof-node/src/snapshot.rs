//! The snapshot of every Ruby thread, of a live process or a core file, as
//! plain objects that `JSON.stringify` can print unchanged.

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use rbprof_core::{take_snapshot, Snapshot, SnapshotOptions};

/// Options of `snapshot`.
#[napi(object)]
pub struct ProcessSnapshotOptions {
    pub pid: i32,
    /// Use the layout of this Ruby version instead of the detected one.
    pub force_version: Option<String>,
    /// Stop every thread with ptrace while the stacks are read; false when
    /// absent.
    pub pause: Option<bool>,
}

/// Options of `snapshotCore`.
#[napi(object)]
pub struct CoreSnapshotOptions {
    /// Path of the ELF core file.
    pub core: String,
    /// The libruby or ruby executable to read in place of the one the core
    /// records, for a core analysed on another machine.
    pub binary: Option<String>,
    /// Use the layout of this Ruby version instead of the detected one.
    pub force_version: Option<String>,
}

/// One frame, outermost first in its stack.
#[napi(object)]
pub struct NativeSnapshotFrame {
    pub name: String,
    pub path: String,
    /// 0 when unknown.
    pub line: u32,
    /// `ruby`, `cfunc` or `synthetic`.
    pub kind: String,
}

/// One Ruby thread.
#[napi(object)]
pub struct NativeThreadSnapshot {
    /// `Thread#name`, if set.
    pub name: Option<String>,
    /// Kernel thread id; 0 when the Ruby build does not record it.
    pub tid: i32,
    /// `running`, `waiting_gvl`, `blocked`, or `unknown` in a core file.
    pub state: String,
    pub frames: Vec<NativeSnapshotFrame>,
    /// The reason the stack could not be read.
    pub error: Option<String>,
}

/// The Ruby threads of a process at one moment.
#[napi(object)]
pub struct NativeSnapshot {
    pub pid: i32,
    pub ruby_version: String,
    pub threads: Vec<NativeThreadSnapshot>,
    pub warnings: Vec<String>,
}

fn convert(snapshot: Snapshot) -> NativeSnapshot {
    let threads = snapshot
        .threads
        .into_iter()
        .map(|thread| NativeThreadSnapshot {
            name: thread.name,
            tid: thread.tid,
            state: thread
                .state
                .map_or("unknown", |state| state.as_str())
                .to_string(),
            frames: thread
                .frames
                .into_iter()
                .map(|frame| NativeSnapshotFrame {
                    name: frame.name,
                    path: frame.path,
                    line: frame.line,
                    kind: frame.kind.as_str().to_string(),
                })
                .collect(),
            error: thread.error,
        })
        .collect();
    NativeSnapshot {
        pid: snapshot.pid,
        ruby_version: snapshot.ruby_version,
        threads,
        warnings: snapshot.warnings,
    }
}

/// Reads every Ruby thread's stack of a running process once, on a worker
/// thread. Rejects with an `Error` that has a `code`, as `NativeSampler.start`.
#[napi(ts_return_type = "Promise<NativeSnapshot>")]
pub fn snapshot(options: ProcessSnapshotOptions) -> AsyncTask<SnapshotTask> {
    let mut core_options = SnapshotOptions::process(options.pid);
    core_options.force_version = options.force_version;
    core_options.pause = options.pause.unwrap_or(false);
    AsyncTask::new(SnapshotTask {
        options: core_options,
    })
}

/// Reads every Ruby thread's stack from an ELF core file, on a worker
/// thread. Thread states are `unknown`.
#[napi(ts_return_type = "Promise<NativeSnapshot>")]
pub fn snapshot_core(options: CoreSnapshotOptions) -> AsyncTask<SnapshotTask> {
    let binary = options.binary.map(PathBuf::from);
    let mut core_options = SnapshotOptions::core(options.core, binary);
    core_options.force_version = options.force_version;
    AsyncTask::new(SnapshotTask {
        options: core_options,
    })
}

pub struct SnapshotTask {
    options: SnapshotOptions,
}

impl Task for SnapshotTask {
    type Output = Result<Snapshot, rbprof_core::Error>;
    type JsValue = NativeSnapshot;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(take_snapshot(&self.options))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeSnapshot> {
        output
            .map(convert)
            .map_err(|error| crate::convert_error(&env, error))
    }
}
