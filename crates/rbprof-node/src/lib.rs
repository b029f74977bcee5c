//! Node.js binding of rbprof-core. Every item here converts between
//! JavaScript values and core types and does nothing else: the sampling
//! logic lives in the core, the aggregation in TypeScript.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{AsyncTask, Float64Array, Object, Uint32Array, Uint8Array};
use napi::{Env, JsValue, Task};
use napi_derive::napi;
use rbprof_core::ruby::layout;
use rbprof_core::{Batch, EndReason, ProcessEventKind, Sampler, SamplerOptions, ThreadState};

mod child;
mod flamegraph;
mod snapshot;

/// Options of `NativeSampler.start`.
#[napi(object)]
pub struct StartOptions {
    pub pid: i32,
    /// Samples per second; the core's default (99) when absent.
    pub rate_hz: Option<f64>,
    /// Also record threads that are not running on a CPU.
    pub idle: Option<bool>,
    /// Use the layout of this Ruby version instead of the detected one.
    pub force_version: Option<String>,
    /// Sample only threads whose `Thread#name` or kernel thread id (in
    /// decimal) equals one of these values, or every thread when absent or
    /// empty.
    pub threads: Option<Vec<String>>,
    /// The target is a child started by `NativeChild.launch`: wait for its
    /// VM as long as it runs instead of 2 seconds.
    pub launched: Option<bool>,
    /// Also sample the Ruby processes that descend from `pid`, including
    /// ones that start during the recording.
    pub subprocesses: Option<bool>,
    /// Stop every thread of the target with ptrace while its stacks are
    /// read; false when absent.
    pub pause: Option<bool>,
}

/// Facts about the target that the sampler read when it opened it.
#[napi(object)]
pub struct NativeTarget {
    pub pid: i32,
    /// The version string read from the target, e.g. `3.1.2`.
    pub ruby_version: String,
    /// The layout version in use; differs from `rubyVersion` with
    /// `forceVersion`.
    pub layout_version: String,
    /// False when the layout was derived from headers but never confirmed
    /// on a live process of that version.
    pub layout_verified: bool,
    /// The file that contains the Ruby VM: the executable or libruby.
    pub ruby_binary: String,
}

/// A newly interned function. Samples refer to it by `id`.
#[napi(object)]
pub struct NativeFunction {
    pub id: u32,
    pub name: String,
    pub path: String,
    /// `ruby`, `cfunc` or `synthetic`.
    pub kind: String,
}

/// A newly seen Ruby thread. Samples refer to it by `id`.
#[napi(object)]
pub struct NativeThread {
    pub id: u32,
    pub pid: i32,
    /// Kernel thread id; 0 when the Ruby build does not record it.
    pub tid: i32,
    /// `Thread#name`, if set.
    pub name: Option<String>,
}

/// Sampler counters, totals since the start. Exact below 2^53.
#[napi(object)]
pub struct NativeStats {
    pub taken: f64,
    pub late: f64,
    pub failed: f64,
    pub thread_samples: f64,
    /// Present once a tick paused the target.
    pub pause: Option<NativePauseStats>,
}

/// The pauses of a recording with `pause`, totals since the start.
#[napi(object)]
pub struct NativePauseStats {
    /// Pauses of a target process: one per process and tick.
    pub count: f64,
    /// Nanoseconds the threads spent stopped, summed over the pauses.
    pub total_ns: f64,
    /// The maximum length of one pause, in nanoseconds.
    pub max_ns: f64,
}

/// A process that the sampler began or stopped following.
#[napi(object)]
pub struct NativeProcessEvent {
    /// Nanoseconds since the recording started.
    pub time_ns: f64,
    pub pid: i32,
    /// The followed process it descends from; 0 for the first target.
    pub parent: i32,
    /// `attached` or `exited`.
    pub kind: String,
    /// The Ruby version, for `attached`.
    pub ruby_version: Option<String>,
}

/// The reason a sampler stopped.
#[napi(object)]
pub struct NativeEnd {
    /// `stopped`, `process_exited` or `failed`.
    pub reason: String,
    /// The cause of the failure, for `failed`.
    pub message: Option<String>,
}

/// Everything the sampler handed over since the previous batch, with the
/// samples flattened into typed arrays: sample `i` has the frames
/// `frameStarts[i] .. frameStarts[i + 1]` of `frameFunctions` and
/// `frameLines`, outermost first.
#[napi(object)]
pub struct NativeBatch {
    pub functions: Vec<NativeFunction>,
    pub threads: Vec<NativeThread>,
    /// Nanoseconds since the recording started; exact for 104 days.
    pub times_ns: Float64Array,
    /// Ids into the thread table.
    pub thread_ids: Uint32Array,
    /// Indexes into `threadStateNames()`.
    pub states: Uint8Array,
    /// One more entry than there are samples.
    pub frame_starts: Uint32Array,
    pub frame_functions: Uint32Array,
    /// Line numbers; 0 means unknown.
    pub frame_lines: Uint32Array,
    pub stats: NativeStats,
    /// Set on the last batch of a sampler.
    pub end: Option<NativeEnd>,
    pub warnings: Vec<String>,
    /// Processes attached or gone since the previous batch.
    pub processes: Vec<NativeProcessEvent>,
}

const THREAD_STATES: [ThreadState; 3] = [
    ThreadState::Running,
    ThreadState::WaitingForGvl,
    ThreadState::Blocked,
];

/// Returns the thread state names that `NativeBatch.states` indexes.
#[napi]
pub fn thread_state_names() -> Vec<&'static str> {
    THREAD_STATES.iter().map(|state| state.as_str()).collect()
}

fn state_index(state: ThreadState) -> u8 {
    // Exhaustive, so a new core state fails to compile until it is listed
    // in THREAD_STATES.
    match state {
        ThreadState::Running => 0,
        ThreadState::WaitingForGvl => 1,
        ThreadState::Blocked => 2,
    }
}

fn convert_batch(batch: Batch) -> NativeBatch {
    let functions = batch
        .functions
        .into_iter()
        .map(|(id, function)| NativeFunction {
            id,
            name: function.name,
            path: function.path,
            kind: function.kind.as_str().to_string(),
        })
        .collect();
    let threads = batch
        .threads
        .into_iter()
        .map(|(id, thread)| NativeThread {
            id,
            pid: thread.pid,
            tid: thread.tid,
            name: thread.name,
        })
        .collect();

    let count = batch.samples.len();
    let frame_count = batch.samples.iter().map(|s| s.frames.len()).sum();
    let mut times_ns = Vec::with_capacity(count);
    let mut thread_ids = Vec::with_capacity(count);
    let mut states = Vec::with_capacity(count);
    let mut frame_starts = Vec::with_capacity(count + 1);
    let mut frame_functions = Vec::with_capacity(frame_count);
    let mut frame_lines = Vec::with_capacity(frame_count);
    frame_starts.push(0);
    for sample in &batch.samples {
        times_ns.push(sample.time_ns as f64);
        thread_ids.push(sample.thread);
        states.push(state_index(sample.state));
        for frame in &sample.frames {
            frame_functions.push(frame.function);
            frame_lines.push(frame.line);
        }
        frame_starts.push(frame_functions.len() as u32);
    }

    let end = batch.end.map(|end| match end {
        EndReason::Stopped => NativeEnd {
            reason: "stopped".into(),
            message: None,
        },
        EndReason::ProcessExited => NativeEnd {
            reason: "process_exited".into(),
            message: None,
        },
        EndReason::Failed(message) => NativeEnd {
            reason: "failed".into(),
            message: Some(message),
        },
    });

    NativeBatch {
        functions,
        threads,
        times_ns: times_ns.into(),
        thread_ids: thread_ids.into(),
        states: states.into(),
        frame_starts: frame_starts.into(),
        frame_functions: frame_functions.into(),
        frame_lines: frame_lines.into(),
        stats: NativeStats {
            taken: batch.stats.taken as f64,
            late: batch.stats.late as f64,
            failed: batch.stats.failed as f64,
            thread_samples: batch.stats.thread_samples as f64,
            pause: (batch.stats.pauses > 0).then(|| NativePauseStats {
                count: batch.stats.pauses as f64,
                total_ns: batch.stats.pause_ns as f64,
                max_ns: batch.stats.max_pause_ns as f64,
            }),
        },
        end,
        warnings: batch.warnings,
        processes: batch
            .processes
            .into_iter()
            .map(|event| {
                let (kind, ruby_version) = match event.kind {
                    ProcessEventKind::Attached { ruby_version } => ("attached", Some(ruby_version)),
                    ProcessEventKind::Exited => ("exited", None),
                };
                NativeProcessEvent {
                    time_ns: event.time_ns as f64,
                    pid: event.pid,
                    parent: event.parent,
                    kind: kind.into(),
                    ruby_version,
                }
            })
            .collect(),
    }
}

/// A range of Ruby releases that share one set of struct layouts.
#[napi(object)]
pub struct NativeVersionRange {
    /// First release of the range, e.g. `3.1.0`.
    pub from: String,
    /// Last release of the range, inclusive.
    pub through: String,
    /// True once a live process of this range has been profiled.
    pub verified: bool,
}

/// Returns the ranges of Ruby releases that rbprof has struct layouts for,
/// in the order of the layout table.
#[napi]
pub fn supported_versions() -> Vec<NativeVersionRange> {
    layout::all()
        .iter()
        .map(|layout| NativeVersionRange {
            from: layout.from.clone(),
            through: layout.through.clone(),
            verified: layout.verified,
        })
        .collect()
}

/// Converts a core error into a JavaScript `Error` whose `code` is the
/// core's stable code and whose `hint`, where there is one, gives the
/// user's next step. Every core error reaches JavaScript through this
/// function.
pub(crate) fn convert_error(env: &Env, error: rbprof_core::Error) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut object: Object = env.create_error(napi::Error::from_reason(error.to_string()))?;
        object.set("code", error.code())?;
        if let Some(hint) = error.hint() {
            object.set("hint", hint)?;
        }
        Ok(napi::Error::from(object.to_unknown()))
    };
    // Building the object fails only while the environment shuts down, and
    // then the code is kept in the message.
    build().unwrap_or_else(|_| {
        napi::Error::new(
            napi::Status::GenericFailure,
            format!("{}: {error}", error.code()),
        )
    })
}

/// A running sampler of one Ruby process. Dropping it (when the garbage
/// collector frees the object) stops the sampling thread.
#[napi]
pub struct NativeSampler {
    sampler: Arc<Sampler>,
}

#[napi]
impl NativeSampler {
    /// Opens the target and starts sampling. Rejects with an `Error` that
    /// has a `code` such as `ERR_NO_SUCH_PROCESS` and, usually, a `hint`.
    #[napi(ts_return_type = "Promise<NativeSampler>")]
    pub fn start(options: StartOptions) -> AsyncTask<StartTask> {
        let mut core_options = SamplerOptions::new(options.pid);
        if let Some(rate_hz) = options.rate_hz {
            core_options.rate_hz = rate_hz;
        }
        if let Some(idle) = options.idle {
            core_options.idle = idle;
        }
        core_options.force_version = options.force_version;
        core_options.threads = options.threads.unwrap_or_default();
        core_options.launched = options.launched.unwrap_or(false);
        core_options.subprocesses = options.subprocesses.unwrap_or(false);
        core_options.pause = options.pause.unwrap_or(false);
        AsyncTask::new(StartTask {
            options: Some(core_options),
        })
    }

    /// Returns the facts about the target read when sampling started.
    #[napi(getter)]
    pub fn target(&self) -> NativeTarget {
        let target = self.sampler.target();
        NativeTarget {
            pid: target.pid,
            ruby_version: target.ruby_version.clone(),
            layout_version: target.layout_version.clone(),
            layout_verified: target.layout_verified,
            ruby_binary: target.ruby_binary.clone(),
        }
    }

    /// Waits up to `timeoutMs` on a worker thread for samples. Resolves to
    /// `null` once the batch whose `end` is set has been returned; a batch
    /// may be empty when the timeout passes first.
    #[napi(ts_return_type = "Promise<NativeBatch | null>")]
    pub fn next_batch(&self, timeout_ms: u32) -> AsyncTask<NextBatchTask> {
        AsyncTask::new(NextBatchTask {
            sampler: Arc::clone(&self.sampler),
            timeout: Duration::from_millis(timeout_ms.into()),
        })
    }

    /// Stops the sampling thread and returns the samples not yet handed out,
    /// with `end` set.
    #[napi]
    pub fn stop(&self) -> NativeBatch {
        convert_batch(self.sampler.stop())
    }
}

pub struct StartTask {
    options: Option<SamplerOptions>,
}

impl Task for StartTask {
    type Output = Result<Sampler, rbprof_core::Error>;
    type JsValue = NativeSampler;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let options = self.options.take().expect("a task is computed once");
        Ok(Sampler::start(options))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeSampler> {
        match output {
            Ok(sampler) => Ok(NativeSampler {
                sampler: Arc::new(sampler),
            }),
            Err(error) => Err(convert_error(&env, error)),
        }
    }
}

pub struct NextBatchTask {
    sampler: Arc<Sampler>,
    timeout: Duration,
}

impl Task for NextBatchTask {
    type Output = Option<Batch>;
    type JsValue = Option<NativeBatch>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.sampler.next_batch(self.timeout))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output.map(convert_batch))
    }
}
