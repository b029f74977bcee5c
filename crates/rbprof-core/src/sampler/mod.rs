//! The sampler: a native thread per target that reads every Ruby thread's
//! stack on an absolute schedule and hands batches to the caller.
//!
//! Timing never depends on the caller: samples wait in a bounded buffer
//! until `next_batch` takes them.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process;
use crate::ruby::walker::{RubyThread, WalkError};
use crate::ruby::RubyProcess;
use crate::sample::{Batch, EndReason, Frame, Interner, Sample, Stats, ThreadInfo, ThreadState};

/// The highest sampling rate accepted.
pub const MAX_RATE_HZ: f64 = 10_000.0;
/// Samples buffered for a caller that does not drain them; later ones are
/// dropped with a warning.
const MAX_PENDING_SAMPLES: usize = 1_000_000;
/// Failed stack reads tolerated in silence: a running target tears one now
/// and then.
const STACK_FAILURES_BEFORE_WARNING: u64 = 20;
/// Distinct warnings passed on per recording.
const MAX_WARNINGS: usize = 20;

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
    /// Sample only threads whose `Thread#name` or kernel thread id equals
    /// one of these values, or every thread when empty.
    pub threads: Vec<String>,
    /// The target is a child that rbprof has just launched, so opening it
    /// waits for its VM as long as it runs (see
    /// [`RubyProcess::open_launched`]).
    pub launched: bool,
}

impl SamplerOptions {
    /// Returns the defaults: 99 Hz, on-CPU samples only.
    pub fn new(pid: i32) -> Self {
        SamplerOptions {
            pid,
            rate_hz: 99.0,
            idle: false,
            force_version: None,
            threads: Vec::new(),
            launched: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.pid <= 0 {
            return Err(Error::InvalidArgument(format!(
                "pid {} is not a process id",
                self.pid
            )));
        }
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= MAX_RATE_HZ) {
            return Err(Error::InvalidArgument(format!(
                "rate {} Hz is invalid: it must be above 0 and at most {MAX_RATE_HZ} Hz",
                self.rate_hz
            )));
        }
        Ok(())
    }
}

/// Facts the sampler read when it opened the target.
#[derive(Clone, Debug)]
pub struct TargetInfo {
    pub pid: i32,
    /// The version string read from the target, e.g. `3.1.2`.
    pub ruby_version: String,
    /// The first release of the layout in use (differs with `force_version`).
    pub layout_version: String,
    /// False when the layout was derived from headers but never confirmed
    /// on a live process of that version.
    pub layout_verified: bool,
    /// The file that contains the Ruby VM: the executable or libruby.
    pub ruby_binary: String,
}

#[derive(Default)]
struct Pending {
    batch: Batch,
    end: Option<EndReason>,
    /// The batch carrying `end` has been handed out.
    end_delivered: bool,
    dropped_warning: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    ready: Condvar,
    stop: Mutex<bool>,
    wake: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on the sampler thread must not make every later call panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running sampler. Dropping it stops the thread.
pub struct Sampler {
    target: TargetInfo,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Sampler {
    /// Opens the target and starts the sampling thread.
    pub fn start(options: SamplerOptions) -> Result<Sampler> {
        options.validate()?;
        let force_version = options.force_version.as_deref();
        let process = if options.launched {
            RubyProcess::open_launched(options.pid, force_version)?
        } else {
            RubyProcess::open(options.pid, force_version)?
        };
        let target = TargetInfo {
            pid: process.pid,
            ruby_version: process.version.clone(),
            layout_version: process.layout.from.clone(),
            layout_verified: process.layout.verified,
            ruby_binary: process.binary_path.clone(),
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            ready: Condvar::new(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        lock(&shared.pending).batch.warnings = process.warnings.clone();

        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("rbprof-{}", options.pid))
            .spawn(move || run(process, options, thread_shared))
            .map_err(|e| Error::io("starting the sampler thread", e))?;
        Ok(Sampler {
            target,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn target(&self) -> &TargetInfo {
        &self.target
    }

    /// Waits up to `timeout` for samples and returns what arrived, possibly
    /// nothing. Returns `None` after the last batch (the one whose `end`
    /// is set) has been returned.
    pub fn next_batch(&self, timeout: Duration) -> Option<Batch> {
        let deadline = Instant::now() + timeout;
        let mut pending = lock(&self.shared.pending);
        loop {
            if pending.end_delivered {
                return None;
            }
            if !pending.batch.samples.is_empty() || pending.end.is_some() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            pending = self
                .shared
                .ready
                .wait_timeout(pending, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        Some(take_batch(&mut pending))
    }

    /// Stops sampling and returns everything not yet handed out, with
    /// `end` set. Calling it again returns an empty batch with the same
    /// `end`.
    pub fn stop(&self) -> Batch {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        let mut pending = lock(&self.shared.pending);
        if pending.end.is_none() {
            // Only a panic on the sampler thread leaves no end reason.
            pending.end = Some(EndReason::Failed(
                "the sampler thread stopped unexpectedly".into(),
            ));
        }
        let end = pending.end.clone();
        let mut batch = take_batch(&mut pending);
        batch.end = end;
        batch
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn take_batch(pending: &mut Pending) -> Batch {
    let stats = pending.batch.stats;
    let mut batch = std::mem::take(&mut pending.batch);
    pending.batch.stats = stats;
    if pending.end.is_some() {
        batch.end = pending.end.clone();
        pending.end_delivered = true;
    }
    batch
}

/// The sampler thread's state between ticks.
struct Recorder {
    process: RubyProcess,
    options: SamplerOptions,
    threads: Interner<ThreadInfo>,
    stats: Stats,
    warnings_seen: Vec<String>,
    /// Stacks that could not be read for reasons other than tearing.
    stack_failures: u64,
    new_warnings: Vec<String>,
    samples: Vec<Sample>,
}

impl Recorder {
    fn warn(&mut self, message: String) {
        if self.warnings_seen.len() < MAX_WARNINGS && !self.warnings_seen.contains(&message) {
            self.warnings_seen.push(message.clone());
            self.new_warnings.push(message);
        }
    }

    /// Reads every thread once. Returns the end reason if the target is
    /// gone.
    fn tick(&mut self, time_ns: u64) -> Option<EndReason> {
        self.stats.taken += 1;
        let pid = self.options.pid;
        let threads = match self.process.walker.threads() {
            Ok(threads) => threads,
            Err(error) => return self.failed_tick(error),
        };
        let in_gc = self.during_gc();
        // GC runs on the thread that has the GVL. Rubies that do not show
        // the holder (2.7) get the frame on every thread on a CPU.
        let gvl_known = threads.iter().any(|t| t.holds_gvl);
        let mut failed = false;
        for thread in threads {
            if !self.selected(&thread) {
                continue;
            }
            let state = self.process.thread_state(&thread);
            if !self.options.idle && state != ThreadState::Running {
                continue;
            }
            let frames = match self.process.walker.stack(thread.ec) {
                Ok(frames) => frames,
                Err(error) => {
                    if error.process_gone() || !target_alive(pid) {
                        return Some(EndReason::ProcessExited);
                    }
                    failed = true;
                    // A target that keeps running while it is read tears a
                    // stack now and then, or frees an object on the way,
                    // and only the failed count shows that. Failures that
                    // keep coming may mean a wrong layout: those are named.
                    if !matches!(error, WalkError::Torn(_)) {
                        self.stack_failures += 1;
                        if self.stack_failures == STACK_FAILURES_BEFORE_WARNING {
                            self.warn(format!(
                                "{STACK_FAILURES_BEFORE_WARNING} stacks could not be read \
                                 so far; the latest: {error}"
                            ));
                        }
                    }
                    continue;
                }
            };
            if frames.is_empty() {
                continue;
            }
            let collecting = thread.holds_gvl || (!gvl_known && state == ThreadState::Running);
            let mut frames = frames;
            if in_gc && collecting {
                let function = self.process.walker.gc_function();
                frames.push(Frame { function, line: 0 });
            }
            let name = self.process.walker.thread_name(&thread);
            let thread_id = self.threads.intern(&ThreadInfo {
                pid,
                tid: thread.tid,
                name,
            });
            self.stats.thread_samples += 1;
            self.samples.push(Sample {
                time_ns,
                pid,
                tid: thread.tid,
                thread: thread_id,
                state,
                frames,
            });
        }
        if failed {
            self.stats.failed += 1;
        }
        None
    }

    /// Tells whether `--threads` selects a thread. The name is read only
    /// when the id does not match, and unselected threads are skipped
    /// before their state or stack is read.
    fn selected(&mut self, thread: &RubyThread) -> bool {
        let selectors = &self.options.threads;
        if selectors.is_empty() {
            return true;
        }
        let tid = thread.tid.to_string();
        if selectors.iter().any(|value| *value == tid) {
            return true;
        }
        match self.process.walker.thread_name(thread) {
            Some(name) => self.options.threads.contains(&name),
            None => false,
        }
    }

    /// Tells whether the VM is collecting garbage at this tick.
    fn during_gc(&self) -> bool {
        let Some(flag) = self.process.gc_flag else {
            return false;
        };
        let Ok(vm) = self.process.walker.vm() else {
            return false;
        };
        flag.during_gc(self.process.walker.memory(), vm) == Some(true)
    }

    fn failed_tick(&mut self, error: WalkError) -> Option<EndReason> {
        if error.process_gone() || !target_alive(self.options.pid) {
            return Some(EndReason::ProcessExited);
        }
        // The VM pointer is cleared when Ruby tears its VM down at exit;
        // nothing Ruby is left to sample after that.
        if self.process.walker.vm() == Ok(0) {
            return Some(EndReason::ProcessExited);
        }
        self.stats.failed += 1;
        self.warn(format!("the thread list could not be read: {error}"));
        None
    }

    /// Moves what this tick produced to the shared buffer.
    fn publish(&mut self, shared: &Shared, end: Option<EndReason>) {
        let mut pending = lock(&shared.pending);
        let batch = &mut pending.batch;
        batch
            .functions
            .extend(self.process.walker.functions.take_new());
        batch.threads.extend(self.threads.take_new());
        batch.warnings.append(&mut self.new_warnings);
        let room = MAX_PENDING_SAMPLES.saturating_sub(batch.samples.len());
        let dropped = self.samples.len().saturating_sub(room);
        batch.samples.extend(self.samples.drain(..).take(room));
        batch.stats = self.stats;
        if dropped > 0 && !pending.dropped_warning {
            pending.dropped_warning = true;
            pending.batch.warnings.push(format!(
                "{dropped} samples were dropped because they were not collected in time"
            ));
        }
        if end.is_some() {
            pending.end = end;
        }
        drop(pending);
        shared.ready.notify_all();
    }
}

/// Tells whether the target still runs (not gone and not a zombie).
fn target_alive(pid: i32) -> bool {
    match process::task_state(pid, pid) {
        Some(state) => state.state != b'Z' && state.state != b'X',
        None => false,
    }
}

fn run(process: RubyProcess, options: SamplerOptions, shared: Arc<Shared>) {
    let period = Duration::from_secs_f64(1.0 / options.rate_hz);
    let mut recorder = Recorder {
        process,
        options,
        threads: Interner::default(),
        stats: Stats::default(),
        warnings_seen: Vec::new(),
        stack_failures: 0,
        new_warnings: Vec::new(),
        samples: Vec::new(),
    };
    let start = Instant::now();
    let mut jitter = Jitter::new(recorder.options.pid);
    let mut tick: u64 = 0;
    let end = loop {
        // Tick k is due at a random point of [start + k * period,
        // start + (k + 1) * period), whatever earlier ticks cost. A fixed
        // phase would alias with work that repeats near the sampling rate
        // (a 10 ms loop sampled at 99 Hz drifts through its phases once a
        // second, and short recordings then over-count some of them).
        let due = start + period.mul_f64(tick as f64 + jitter.next_fraction());
        if wait_until(&shared, due) {
            break EndReason::Stopped;
        }
        let now = Instant::now();
        if now.duration_since(due) > period {
            recorder.stats.late += 1;
        }
        let time_ns = now.duration_since(start).as_nanos() as u64;
        let end = recorder.tick(time_ns);
        recorder.publish(&shared, None);
        if let Some(end) = end {
            break end;
        }

        // Ticks whose time passed while this one ran are skipped and
        // counted as late.
        let elapsed = Instant::now().duration_since(start);
        let current = (elapsed.as_secs_f64() / period.as_secs_f64()) as u64;
        if current > tick + 1 {
            recorder.stats.late += current - tick - 1;
            tick = current;
        } else {
            tick += 1;
        }
    };
    recorder.publish(&shared, Some(end));
}

/// A small SplitMix64 generator for tick offsets; sampling needs no
/// cryptographic quality, only independence from the target's rhythm.
struct Jitter(u64);

impl Jitter {
    fn new(pid: i32) -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter(nanos ^ ((pid as u64) << 32))
    }

    /// Returns a uniform value in [0, 1).
    fn next_fraction(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sleeps until `due`; returns true when asked to stop first.
fn wait_until(shared: &Shared, due: Instant) -> bool {
    let mut stopped = lock(&shared.stop);
    loop {
        if *stopped {
            return true;
        }
        let now = Instant::now();
        if now >= due {
            return false;
        }
        stopped = shared
            .wake
            .wait_timeout(stopped, due - now)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
}
