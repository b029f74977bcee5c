//! The sampler: a native thread per target that reads every Ruby thread's
//! stack on an absolute schedule and hands batches to the caller.
//!
//! Timing never depends on the caller: samples wait in a bounded buffer
//! until `next_batch` takes them.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::ptrace::{self, Pause, Tracer};
use crate::process::{self, tree};
use crate::ruby::walker::{RubyThread, WalkError};
use crate::ruby::RubyProcess;
use crate::sample::{
    Batch, EndReason, Frame, Function, Interner, ProcessEvent, ProcessEventKind, Sample, Stats,
    ThreadInfo, ThreadState,
};

/// The highest sampling rate accepted.
pub const MAX_RATE_HZ: f64 = 10_000.0;
/// Samples buffered for a caller that does not drain them; later ones are
/// dropped with a warning.
const MAX_PENDING_SAMPLES: usize = 1_000_000;
/// Failed stack reads tolerated in silence: a running target tears one now
/// and then.
const STACK_FAILURES_BEFORE_WARNING: u64 = 20;
/// Threads named in the warning about a selection that matches none.
const MAX_LISTED_THREADS: usize = 16;
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
    /// Also sample the Ruby processes that descend from the target, forked
    /// or spawned, including ones that start during the recording.
    pub subprocesses: bool,
    /// Stop every thread of a process while its stacks are read, with
    /// ptrace, so that no stack tears. It costs the target the pause at each
    /// tick and needs the right to trace it (see `process::ptrace`).
    pub pause: bool,
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
            subprocesses: false,
            pause: false,
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
            if options.subprocesses {
                // The command may be a shell or wrapper that starts Ruby as
                // a child, which then becomes the first target.
                open_launched_tree(options.pid, force_version)?
            } else {
                RubyProcess::open_launched(options.pid, force_version)?
            }
        } else {
            RubyProcess::open(options.pid, force_version)?
        };
        if options.pause {
            // A denied pause fails here, with a permission error, rather
            // than at every tick.
            ptrace::check_pause(process.pid)?;
        }
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

/// How often a recording with `subprocesses` looks for new descendants.
/// Reading the `children` files of the followed processes costs a few
/// reads, so a new worker is sampled within this time of its fork.
const SCAN_INTERVAL: Duration = Duration::from_millis(50);
/// Processes sampled at once by one recording.
const MAX_TARGETS: usize = 256;
/// The maximum wait between two attempts to open a descendant whose VM
/// is not ready yet.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(1);

/// One process being sampled.
struct Target {
    process: RubyProcess,
    /// The followed process it descends from; 0 for the first process.
    parent: i32,
    /// When the process started, to notice a reused pid.
    start_time: Option<u64>,
    /// The recording's function id of each function id of this process's
    /// walker: every process interns its own functions, and a recording
    /// of several processes shares one table.
    function_ids: Vec<u32>,
    /// Stacks that could not be read for reasons other than tearing.
    stack_failures: u64,
    /// Stops the process's threads at each tick, with `pause`.
    tracer: Option<Tracer>,
}

impl Target {
    fn new(process: RubyProcess, parent: i32, pause: bool) -> Target {
        let start_time = tree::start_time(process.pid);
        let tracer = pause.then(|| Tracer::new(process.pid));
        Target {
            process,
            parent,
            start_time,
            function_ids: Vec::new(),
            stack_failures: 0,
            tracer,
        }
    }

    /// Moves the functions this process's walker found since the last call
    /// into the recording's table.
    fn sync_functions(&mut self, table: &mut Interner<Function>) {
        for (local, function) in self.process.walker.functions.take_new() {
            let global = table.intern(&function);
            let index = local as usize;
            if self.function_ids.len() <= index {
                self.function_ids.resize(index + 1, u32::MAX);
            }
            self.function_ids[index] = global;
        }
    }
}

/// A descendant that is not sampled: not Ruby, or not ready yet.
struct Candidate {
    start_time: Option<u64>,
    executable: Option<(u64, u64)>,
    /// When to try to open it again; `None` means only once its program
    /// changes.
    retry_at: Option<Instant>,
    tries: u32,
}

/// The result of one tick for one target.
enum Outcome {
    Sampled,
    Gone,
}

/// The sampler thread's state between ticks.
struct Recorder {
    targets: Vec<Target>,
    options: SamplerOptions,
    /// The process the recording started with.
    root: i32,
    started: Instant,
    functions: Interner<Function>,
    threads: Interner<ThreadInfo>,
    stats: Stats,
    warnings_seen: Vec<String>,
    new_warnings: Vec<String>,
    samples: Vec<Sample>,
    events: Vec<ProcessEvent>,
    /// Descendants that are not sampled, by pid.
    candidates: HashMap<i32, Candidate>,
    /// A thread selection matched a thread at least once.
    selection_matched: bool,
    /// Threads that the selection skipped, as `name (id)`, for the warning
    /// when it matches none.
    skipped_threads: Vec<String>,
}

impl Recorder {
    fn new(process: RubyProcess, options: SamplerOptions, started: Instant) -> Recorder {
        // Descendants are looked for below the requested process, which
        // differs from the first target when a launched wrapper started it.
        let root = options.pid;
        let mut recorder = Recorder {
            targets: Vec::new(),
            options,
            root,
            started,
            functions: Interner::default(),
            threads: Interner::default(),
            stats: Stats::default(),
            warnings_seen: Vec::new(),
            new_warnings: Vec::new(),
            samples: Vec::new(),
            events: Vec::new(),
            candidates: HashMap::new(),
            selection_matched: false,
            skipped_threads: Vec::new(),
        };
        recorder.attach(process, 0);
        recorder
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn attach(&mut self, process: RubyProcess, parent: i32) {
        self.events.push(ProcessEvent {
            time_ns: self.now_ns(),
            pid: process.pid,
            parent,
            kind: ProcessEventKind::Attached {
                ruby_version: process.version.clone(),
            },
        });
        if parent != 0 {
            for warning in &process.warnings {
                self.warn(format!("process {}: {warning}", process.pid));
            }
        }
        self.targets
            .push(Target::new(process, parent, self.options.pause));
    }

    fn warn(&mut self, message: String) {
        if self.warnings_seen.len() < MAX_WARNINGS && !self.warnings_seen.contains(&message) {
            self.warnings_seen.push(message.clone());
            self.new_warnings.push(message);
        }
    }

    /// Reads every thread of every target once. Returns the end reason
    /// when nothing is left to sample.
    fn tick(&mut self, time_ns: u64) -> Option<EndReason> {
        self.stats.taken += 1;
        let mut failed = false;
        let mut index = 0;
        while index < self.targets.len() {
            match self.tick_target(index, time_ns, &mut failed) {
                Outcome::Sampled => index += 1,
                Outcome::Gone => {
                    let target = self.targets.remove(index);
                    self.lost(target);
                }
            }
        }
        if failed {
            self.stats.failed += 1;
        }
        if self.targets.is_empty() {
            // A wrapper that is not sampled may still start another Ruby.
            let wrapper_runs = self.options.subprocesses && target_alive(self.root);
            if !wrapper_runs {
                return Some(EndReason::ProcessExited);
            }
        }
        self.check_selection();
        None
    }

    /// Warns once, after about a second, when a thread selection matched
    /// no thread: a misspelt name would otherwise give an empty profile
    /// with no hint why.
    fn check_selection(&mut self) {
        let after = (self.options.rate_hz.ceil() as u64).max(1);
        if self.options.threads.is_empty() || self.selection_matched || self.stats.taken != after {
            return;
        }
        let listed = if self.skipped_threads.is_empty() {
            "no threads were seen".to_string()
        } else {
            format!("the threads seen are {}", self.skipped_threads.join(", "))
        };
        self.warn(format!(
            "no thread's name or native id matches the thread selection ({}); {listed}",
            self.options.threads.join(", ")
        ));
    }

    fn lost(&mut self, target: Target) {
        self.events.push(ProcessEvent {
            time_ns: self.now_ns(),
            pid: target.process.pid,
            parent: target.parent,
            kind: ProcessEventKind::Exited,
        });
    }

    /// Reads one target, with its threads stopped when it has a tracer.
    /// They restart right after the last stack is read.
    fn tick_target(&mut self, index: usize, time_ns: u64, failed: &mut bool) -> Outcome {
        let Some(mut tracer) = self.targets[index].tracer.take() else {
            return self.read_target(index, time_ns, failed, None);
        };
        let outcome = match tracer.pause() {
            Ok(pause) => {
                let outcome = self.read_target(index, time_ns, failed, Some(&pause));
                let length = pause.resume().as_nanos() as u64;
                self.stats.pauses += 1;
                self.stats.pause_ns += length;
                self.stats.max_pause_ns = self.stats.max_pause_ns.max(length);
                outcome
            }
            // The read that follows finds the process gone.
            Err(Error::NoSuchProcess { .. }) => self.read_target(index, time_ns, failed, None),
            Err(error) => {
                let pid = self.targets[index].process.pid;
                self.warn(format!(
                    "process {pid} was read without pausing it: {error}"
                ));
                self.read_target(index, time_ns, failed, None)
            }
        };
        // A target that is gone is removed after this returns.
        self.targets[index].tracer = Some(tracer);
        outcome
    }

    fn read_target(
        &mut self,
        index: usize,
        time_ns: u64,
        failed: &mut bool,
        pause: Option<&Pause>,
    ) -> Outcome {
        let target = &mut self.targets[index];
        let pid = target.process.pid;
        // While paused, /proc shows every thread stopped, so the states
        // read just before the pause count.
        let task_state = |tid: i32| match pause {
            Some(pause) => pause.task_state(tid),
            None => process::task_state(pid, tid),
        };
        let threads = match target.process.walker.threads() {
            Ok(threads) => threads,
            Err(error) => return self.failed_threads(index, error, failed),
        };
        let in_gc = during_gc(&target.process);
        // GC runs on the thread that has the GVL. Rubies that do not show
        // the holder (2.7) get the frame on every thread on a CPU.
        let gvl_known = threads.iter().any(|t| t.holds_gvl);
        // Read only when a thread's kernel id is not a task of this
        // process, which happens in forked children.
        let mut main_thread: Option<Option<u64>> = None;
        let mut new_warning = None;
        for thread in threads {
            if !selected(&self.options.threads, &mut target.process, &thread) {
                if !self.selection_matched && self.skipped_threads.len() < MAX_LISTED_THREADS {
                    let name = target.process.walker.thread_name(&thread);
                    let label = match name {
                        Some(name) => format!("{name:?} ({})", thread.tid),
                        None => format!("unnamed ({})", thread.tid),
                    };
                    if !self.skipped_threads.contains(&label) {
                        self.skipped_threads.push(label);
                    }
                }
                continue;
            }
            self.selection_matched = true;
            let mut resolved = target
                .process
                .resolve_thread_with(&thread, None, task_state);
            if resolved.is_none() {
                let main =
                    *main_thread.get_or_insert_with(|| target.process.walker.main_thread().ok());
                resolved = target
                    .process
                    .resolve_thread_with(&thread, main, task_state);
            }
            let Some((tid, state)) = resolved else {
                continue;
            };
            if !self.options.idle && state != ThreadState::Running {
                continue;
            }
            let frames = match target.process.walker.stack(thread.ec) {
                Ok(frames) => frames,
                Err(error) => {
                    if error.process_gone() || !target_alive(pid) {
                        return Outcome::Gone;
                    }
                    *failed = true;
                    // A target that keeps running while it is read tears a
                    // stack now and then, or frees an object on the way,
                    // and only the failed count shows that. Failures that
                    // keep coming may mean a wrong layout: those are named.
                    if !matches!(error, WalkError::Torn(_)) {
                        target.stack_failures += 1;
                        if target.stack_failures == STACK_FAILURES_BEFORE_WARNING {
                            new_warning = Some(format!(
                                "{STACK_FAILURES_BEFORE_WARNING} stacks could not be read \
                                 so far in process {pid}; the latest: {error}"
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
                let function = target.process.walker.gc_function();
                frames.push(Frame { function, line: 0 });
            }
            target.sync_functions(&mut self.functions);
            for frame in &mut frames {
                frame.function = target
                    .function_ids
                    .get(frame.function as usize)
                    .copied()
                    .unwrap_or(u32::MAX);
            }
            let name = target.process.walker.thread_name(&thread);
            let thread_id = self.threads.intern(&ThreadInfo { pid, tid, name });
            self.stats.thread_samples += 1;
            self.samples.push(Sample {
                time_ns,
                pid,
                tid,
                thread: thread_id,
                state,
                frames,
            });
        }
        target.sync_functions(&mut self.functions);
        if let Some(warning) = new_warning {
            self.warn(warning);
        }
        Outcome::Sampled
    }

    fn failed_threads(&mut self, index: usize, error: WalkError, failed: &mut bool) -> Outcome {
        let target = &self.targets[index];
        let pid = target.process.pid;
        if error.process_gone() || !target_alive(pid) {
            return Outcome::Gone;
        }
        // The VM pointer is cleared when Ruby tears its VM down at exit;
        // nothing Ruby is left to sample after that.
        if target.process.walker.vm() == Ok(0) {
            return Outcome::Gone;
        }
        // A followed process that ran exec maps another image: it is
        // dropped here and opened again by the next scan if it is Ruby.
        if self.options.subprocesses && !target.process.same_image() {
            return Outcome::Gone;
        }
        *failed = true;
        self.warn(format!(
            "the thread list of process {pid} could not be read: {error}"
        ));
        Outcome::Sampled
    }

    /// Looks for descendants that are not sampled yet and opens those that
    /// run Ruby. Runs on the sampler thread between ticks.
    fn scan(&mut self) {
        let now = Instant::now();
        // Targets whose pid now belongs to another process are dropped.
        let mut index = 0;
        while index < self.targets.len() {
            let target = &self.targets[index];
            if tree::start_time(target.process.pid) != target.start_time {
                let target = self.targets.remove(index);
                self.lost(target);
            } else {
                index += 1;
            }
        }

        let mut roots = vec![self.root];
        if !process::exists(self.root) {
            // Orphans of an exited root are found below their followed
            // ancestors.
            roots = self.targets.iter().map(|t| t.process.pid).collect();
        }
        let mut found: Vec<tree::Descendant> = Vec::new();
        for root in roots {
            for descendant in tree::descendants(root, tree::MAX_DESCENDANTS) {
                if !found.iter().any(|d| d.pid == descendant.pid) {
                    found.push(descendant);
                }
            }
        }
        self.candidates
            .retain(|pid, _| found.iter().any(|d| d.pid == *pid));

        for descendant in found {
            let pid = descendant.pid;
            if self.targets.iter().any(|t| t.process.pid == pid) {
                continue;
            }
            if let Some(candidate) = self.candidates.get(&pid) {
                let changed = tree::start_time(pid) != candidate.start_time
                    || tree::executable_identity(pid) != candidate.executable;
                let due = candidate.retry_at.is_some_and(|at| now >= at);
                if !changed && !due {
                    continue;
                }
            }
            if self.targets.len() >= MAX_TARGETS {
                self.warn(format!(
                    "more than {MAX_TARGETS} Ruby processes descend from {}; \
                     later ones are not sampled",
                    self.root
                ));
                return;
            }
            self.try_follow(descendant, now);
        }
    }

    fn try_follow(&mut self, descendant: tree::Descendant, now: Instant) {
        let pid = descendant.pid;
        // A child of a sampled process that has not run exec shares its
        // parent's image, so the parent's findings open it at once.
        let parent = self
            .targets
            .iter()
            .find(|t| t.process.pid == descendant.parent);
        let parent_pid = parent.map(|t| t.process.pid);
        let opened = match parent.map(|t| t.process.open_fork(pid)) {
            Some(Ok(Some(process))) => Ok(process),
            Some(Err(error)) => Err(error),
            Some(Ok(None)) | None => {
                RubyProcess::open_once(pid, self.options.force_version.as_deref())
            }
        };
        let start_time = tree::start_time(pid);
        let executable = tree::executable_identity(pid);
        match opened {
            Ok(process) => {
                self.candidates.remove(&pid);
                let ancestor = parent_pid.unwrap_or_else(|| self.followed_ancestor(descendant));
                self.attach(process, ancestor);
            }
            Err(Error::VmUnreadable { .. }) => {
                // Ruby, but its VM is not set up yet: try again soon,
                // then less often.
                let tries = self.candidates.get(&pid).map_or(0, |c| c.tries) + 1;
                let wait = (SCAN_INTERVAL * tries.min(64)).min(MAX_RETRY_WAIT);
                self.candidates.insert(
                    pid,
                    Candidate {
                        start_time,
                        executable,
                        retry_at: Some(now + wait),
                        tries,
                    },
                );
            }
            Err(error) => {
                if matches!(error, Error::PermissionDenied { .. }) {
                    self.warn(format!("process {pid} is not sampled: {error}"));
                }
                // Not Ruby, gone, or unreadable: looked at again only when
                // it runs another program.
                self.candidates.insert(
                    pid,
                    Candidate {
                        start_time,
                        executable,
                        retry_at: None,
                        tries: 0,
                    },
                );
            }
        }
    }

    /// Returns the nearest sampled ancestor of a descendant found through
    /// processes that are not sampled (a shell between two Rubies).
    fn followed_ancestor(&self, descendant: tree::Descendant) -> i32 {
        let mut parent = descendant.parent;
        for _ in 0..64 {
            if self.targets.iter().any(|t| t.process.pid == parent) {
                return parent;
            }
            match tree::parent_of(parent) {
                Some(next) if next > 0 && next != parent => parent = next,
                _ => break,
            }
        }
        descendant.parent
    }

    /// Moves what this tick produced to the shared buffer.
    fn publish(&mut self, shared: &Shared, end: Option<EndReason>) {
        let mut pending = lock(&shared.pending);
        let batch = &mut pending.batch;
        batch.functions.extend(self.functions.take_new());
        batch.threads.extend(self.threads.take_new());
        batch.warnings.append(&mut self.new_warnings);
        batch.processes.append(&mut self.events);
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

/// Tells whether `--threads` selects a thread. The name is read only when
/// the id does not match, and unselected threads are skipped before their
/// state or stack is read.
fn selected(selectors: &[String], process: &mut RubyProcess, thread: &RubyThread) -> bool {
    if selectors.is_empty() {
        return true;
    }
    let tid = thread.tid.to_string();
    if selectors.contains(&tid) {
        return true;
    }
    match process.walker.thread_name(thread) {
        Some(name) => selectors.contains(&name),
        None => false,
    }
}

/// Tells whether the VM is collecting garbage at this tick.
fn during_gc(process: &RubyProcess) -> bool {
    let Some(flag) = process.gc_flag else {
        return false;
    };
    let Ok(vm) = process.walker.vm() else {
        return false;
    };
    flag.during_gc(process.walker.memory(), vm) == Some(true)
}

/// Opens a launched command, or the first process below it that runs Ruby
/// when the command itself does not (a shell or a wrapper script). Waits
/// as long as the command runs, like [`RubyProcess::open_launched`].
fn open_launched_tree(root: i32, force_version: Option<&str>) -> Result<RubyProcess> {
    loop {
        match RubyProcess::open_once(root, force_version) {
            Ok(process) => return Ok(process),
            Err(Error::VmUnreadable { .. }) => {}
            Err(Error::NotRuby { .. }) => {
                for descendant in tree::descendants(root, tree::MAX_DESCENDANTS) {
                    match RubyProcess::open_once(descendant.pid, force_version) {
                        Ok(process) => return Ok(process),
                        // A Ruby that cannot be read ends the wait with its
                        // reason.
                        Err(
                            error @ (Error::UnsupportedVersion { .. }
                            | Error::PermissionDenied { .. }),
                        ) => return Err(error),
                        Err(_) => {}
                    }
                }
            }
            Err(Error::NoSuchProcess { .. } | Error::ProcessExited { .. }) => break,
            Err(error) => return Err(error),
        }
        if !target_alive(root) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::NotRuby {
        pid: root,
        reason: "it exited, and neither it nor a process it started ran Ruby".into(),
    })
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
    let follow = options.subprocesses;
    let start = Instant::now();
    let mut jitter = Jitter::new(options.pid);
    let mut recorder = Recorder::new(process, options, start);
    let mut next_scan = start;
    let mut tick: u64 = 0;
    let end = loop {
        // Tick k is due at a random point of [start + k * period,
        // start + (k + 1) * period), whatever earlier ticks cost. A fixed
        // phase would alias with work that repeats near the sampling rate
        // (a 10 ms loop sampled at 99 Hz drifts through its phases once a
        // second, and short recordings then over-count some of them).
        let due = start + period.mul_f64(tick as f64 + jitter.next_fraction());
        if follow {
            // Scans run on their own schedule, so a low rate does not slow
            // the discovery of new workers.
            let mut stopped = false;
            while next_scan < due {
                if wait_until(&shared, next_scan) {
                    stopped = true;
                    break;
                }
                let began = Instant::now();
                recorder.scan();
                recorder.publish(&shared, None);
                // A large tree makes a scan costly: it then runs less
                // often, so that scans take at most a tenth of the time.
                next_scan = Instant::now() + SCAN_INTERVAL.max(began.elapsed() * 10);
            }
            if stopped {
                break EndReason::Stopped;
            }
        }
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
