//! The one definition of a frame, a thread and a sample that every consumer
//! (the Node binding, the formats, the tests) shares.
//!
//! Functions are interned: a sample carries small ids, and the table that
//! maps ids to names grows with the number of distinct functions in the
//! program, not with the length of the recording.

use std::collections::HashMap;

/// Kind of code a function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Ruby code with an instruction sequence: a method, block, class body.
    Ruby,
    /// A method implemented in C (`Array#sort`).
    CFunc,
    /// A synthetic frame added by the profiler, such as garbage collection.
    Synthetic,
}

impl FrameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameKind::Ruby => "ruby",
            FrameKind::CFunc => "cfunc",
            FrameKind::Synthetic => "synthetic",
        }
    }
}

/// A function: what summary rows are keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Function {
    /// Profiler-style name, such as `Foo#bar`, `Foo.bar` or `block in Foo#bar`.
    pub name: String,
    /// The source path as Ruby reports it; `unknown` for C functions.
    pub path: String,
    pub kind: FrameKind,
}

/// One frame of a sampled stack: a function and the line being executed in
/// it (for callers, the line of the call). Line 0 means unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub function: u32,
    pub line: u32,
}

/// The scheduling state of a thread when it was sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadState {
    /// Running on a CPU (kernel task state `R`).
    Running,
    /// Ready to run Ruby code, waiting for the global VM lock.
    WaitingForGvl,
    /// Sleeping or blocked: `sleep`, IO, a lock, or C code without the GVL.
    Blocked,
}

impl ThreadState {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::WaitingForGvl => "waiting_gvl",
            ThreadState::Blocked => "blocked",
        }
    }
}

/// One thread's stack at one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Nanoseconds since the recording started.
    pub time_ns: u64,
    pub pid: i32,
    /// Native (kernel) thread id; 0 when the Ruby build does not record it.
    pub tid: i32,
    /// Id into the thread table of [`Batch::threads`].
    pub thread: u32,
    pub state: ThreadState,
    /// Outermost frame first, leaf last.
    pub frames: Vec<Frame>,
}

/// A Ruby thread as seen by the sampler.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThreadInfo {
    pub pid: i32,
    pub tid: i32,
    /// `Thread#name`, if set.
    pub name: Option<String>,
}

/// Counters of the sampler, totals since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Ticks at which the target was read.
    pub taken: u64,
    /// Ticks that came later than one period after their time, or were
    /// skipped because the previous read overran.
    pub late: u64,
    /// Ticks at which at least one thread's stack could not be read.
    pub failed: u64,
    /// Thread stacks recorded.
    pub thread_samples: u64,
    /// Pauses of a target process with `pause`: one per process and tick,
    /// unless that pause failed.
    pub pauses: u64,
    /// Nanoseconds the target's threads spent stopped, summed over the
    /// pauses. A pause lasts from its first attach to the request that
    /// restarts its last thread.
    pub pause_ns: u64,
    /// The maximum length of one pause, in nanoseconds.
    pub max_pause_ns: u64,
}

/// A process that a recording began or stopped following.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessEvent {
    /// Nanoseconds since the recording started.
    pub time_ns: u64,
    pub pid: i32,
    /// The process it descends from: its parent, or the nearest followed
    /// ancestor; 0 for the process the recording started with.
    pub parent: i32,
    pub kind: ProcessEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEventKind {
    /// Sampling of the process began.
    Attached { ruby_version: String },
    /// The process exited, or ran exec and is no longer the program that
    /// was followed (it is followed again if the new program is Ruby).
    Exited,
}

/// Reason a sampler stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    Stopped,
    ProcessExited,
    /// Sampling failed for good, for the reason in the message.
    Failed(String),
}

/// Data produced since the previous batch: new table entries first, then
/// samples that refer to them.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Newly interned functions, as (id, function).
    pub functions: Vec<(u32, Function)>,
    /// Newly seen threads, as (id, thread).
    pub threads: Vec<(u32, ThreadInfo)>,
    pub samples: Vec<Sample>,
    pub stats: Stats,
    /// Set on the last batch of a sampler.
    pub end: Option<EndReason>,
    /// Warnings since the previous batch, such as the first failed read.
    pub warnings: Vec<String>,
    /// Processes attached or gone since the previous batch.
    pub processes: Vec<ProcessEvent>,
}

/// A table that gives each distinct value a dense id and remembers which
/// ids have not been handed out in a batch yet.
#[derive(Debug)]
pub struct Interner<T: Clone + Eq + std::hash::Hash> {
    ids: HashMap<T, u32>,
    values: Vec<T>,
    pending: Vec<(u32, T)>,
}

impl<T: Clone + Eq + std::hash::Hash> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            ids: HashMap::new(),
            values: Vec::new(),
            pending: Vec::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Interner<T> {
    /// Returns the id of `value`, adding it if it is new.
    pub fn intern(&mut self, value: &T) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(value.clone(), id);
        self.values.push(value.clone());
        self.pending.push((id, value.clone()));
        id
    }

    /// Returns the value of an id.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.values.get(id as usize)
    }

    /// Takes the values added since the previous call.
    pub fn take_new(&mut self) -> Vec<(u32, T)> {
        std::mem::take(&mut self.pending)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_reuses_ids() {
        let mut table = Interner::default();
        let a = table.intern(&"a".to_string());
        let b = table.intern(&"b".to_string());
        assert_eq!(table.intern(&"a".to_string()), a);
        assert_ne!(a, b);
        assert_eq!(table.take_new().len(), 2);
        assert!(table.take_new().is_empty());
        assert_eq!(table.len(), 2);
    }
}
