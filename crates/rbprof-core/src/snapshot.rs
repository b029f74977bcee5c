//! One look at every Ruby thread of a live process or of a core file: its
//! name, kernel thread id, state and stack.
//!
//! ```no_run
//! use rbprof_core::{take_snapshot, SnapshotOptions};
//!
//! let snapshot = take_snapshot(&SnapshotOptions::process(1234)).unwrap();
//! for thread in &snapshot.threads {
//!     println!("{:?} (native id {})", thread.name, thread.tid);
//!     for frame in &thread.frames {
//!         println!("  {} - {}:{}", frame.name, frame.path, frame.line);
//!     }
//! }
//! ```

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::memory::RemoteMemory;
use crate::process::{self, ptrace};
use crate::ruby::walker::{RubyThread, WalkError, Walker};
use crate::ruby::RubyProcess;
use crate::sample::{FrameKind, ThreadState};

/// Reads of a live process's thread list or of one stack, when the process
/// changed it while it was read. A core file does not change, so it is
/// read once.
const LIVE_ATTEMPTS: usize = 5;

/// The process or core file that a snapshot reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotTarget {
    /// A running process.
    Process { pid: i32 },
    /// An ELF core file, with the file to use in place of the Ruby binary
    /// that the core records.
    Core {
        core: PathBuf,
        binary: Option<PathBuf>,
    },
}

/// Options of [`take_snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    pub target: SnapshotTarget,
    /// Use the layout of this Ruby version instead of the detected one.
    pub force_version: Option<String>,
    /// Stop every thread of a running process with ptrace while the
    /// stacks are read, so that none tears. A core file ignores it.
    pub pause: bool,
}

impl SnapshotOptions {
    /// Returns the options for a running process.
    pub fn process(pid: i32) -> SnapshotOptions {
        SnapshotOptions {
            target: SnapshotTarget::Process { pid },
            force_version: None,
            pause: false,
        }
    }

    /// Returns the options for a core file.
    pub fn core(core: impl Into<PathBuf>, binary: Option<PathBuf>) -> SnapshotOptions {
        SnapshotOptions {
            target: SnapshotTarget::Core {
                core: core.into(),
                binary,
            },
            force_version: None,
            pause: false,
        }
    }
}

/// The Ruby threads of a process at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The live process's id, or the one that the core file records.
    pub pid: i32,
    /// The version string read from the target, e.g. `3.1.2`.
    pub ruby_version: String,
    /// In the order of the VM's thread lists, the main thread first.
    pub threads: Vec<ThreadSnapshot>,
    /// Things the user should know, such as an unverified layout.
    pub warnings: Vec<String>,
}

/// One Ruby thread of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSnapshot {
    /// `Thread#name`, if set.
    pub name: Option<String>,
    /// Kernel thread id; 0 when the Ruby build does not record it.
    pub tid: i32,
    /// `None` in a core file, which does not record scheduling states.
    pub state: Option<ThreadState>,
    /// Outermost frame first, leaf last.
    pub frames: Vec<SnapshotFrame>,
    /// The reason the stack could not be read; `frames` is then empty.
    pub error: Option<String>,
}

/// One frame of a snapshot's stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFrame {
    /// Such as `Foo#bar`, `Foo.bar` or `block in Foo#bar`.
    pub name: String,
    /// The source path as Ruby reports it. A C function has its caller's.
    pub path: String,
    /// The line executing, for callers the line of the call; 0 when
    /// unknown.
    pub line: u32,
    pub kind: FrameKind,
}

/// Opens the target, reads every Ruby thread's stack once and returns
/// them. A thread whose stack cannot be read is listed with an `error`.
pub fn take_snapshot(options: &SnapshotOptions) -> Result<Snapshot> {
    let force_version = options.force_version.as_deref();
    match &options.target {
        SnapshotTarget::Process { pid } => {
            let pid = *pid;
            if pid <= 0 {
                return Err(Error::InvalidArgument(format!(
                    "pid {pid} is not a process id"
                )));
            }
            let mut process = RubyProcess::open(pid, force_version)?;
            let threads = if options.pause {
                let (threads, _) = ptrace::run_paused(pid, |pause| {
                    // /proc shows every thread stopped while paused.
                    read_live(&mut process, |tid| pause.task_state(tid))
                })?;
                threads
            } else {
                read_live(&mut process, |tid| process::task_state(pid, tid))
            }?;
            Ok(Snapshot {
                pid,
                ruby_version: process.version,
                threads,
                warnings: process.warnings,
            })
        }
        SnapshotTarget::Core { core, binary } => {
            let mut process = RubyProcess::open_core(core, binary.as_deref(), force_version)?;
            let fail = |error: WalkError| Error::CoreVmUnreadable {
                path: core.display().to_string(),
                reason: error.to_string(),
            };
            let threads = list_threads(&mut process.walker, 1).map_err(fail)?;
            let threads = threads.into_iter().map(|thread| (thread, None)).collect();
            let threads = read_stacks(&mut process.walker, threads, 1).map_err(fail)?;
            Ok(Snapshot {
                pid: process.pid,
                ruby_version: process.version,
                threads,
                warnings: process.warnings,
            })
        }
    }
}

/// Reads every thread of a live process, classifying each with the task
/// states that `task_state` returns.
fn read_live(
    process: &mut RubyProcess,
    task_state: impl Fn(i32) -> Option<process::TaskState>,
) -> Result<Vec<ThreadSnapshot>> {
    let pid = process.pid;
    let fail = |error: WalkError| live_error(pid, error);
    let threads = list_threads(&mut process.walker, LIVE_ATTEMPTS).map_err(fail)?;
    let threads: Vec<_> = threads
        .into_iter()
        .map(|thread| {
            let state = process.thread_state_with(&thread, &task_state);
            (thread, Some(state))
        })
        .collect();
    read_stacks(&mut process.walker, threads, LIVE_ATTEMPTS).map_err(fail)
}

fn live_error(pid: i32, error: WalkError) -> Error {
    if error.process_gone() {
        Error::ProcessExited { pid }
    } else if error.permission_denied() {
        Error::PermissionDenied {
            pid,
            action: "reading the memory".into(),
        }
    } else {
        Error::VmUnreadable {
            pid,
            reason: error.to_string(),
        }
    }
}

/// Tells whether reading again may succeed: the target changed during the
/// read, rather than went away or denied access.
fn may_retry(error: &WalkError) -> bool {
    !error.process_gone() && !error.permission_denied()
}

fn list_threads<M: RemoteMemory>(
    walker: &mut Walker<M>,
    attempts: usize,
) -> Result<Vec<RubyThread>, WalkError> {
    let mut attempt = 1;
    loop {
        match walker.threads() {
            Err(error) if attempt < attempts && may_retry(&error) => attempt += 1,
            other => return other,
        }
    }
}

/// Reads the stack and name of each thread. Fails only when the target is
/// gone or denies access, because a single unreadable stack becomes that
/// thread's `error`.
fn read_stacks<M: RemoteMemory>(
    walker: &mut Walker<M>,
    threads: Vec<(RubyThread, Option<ThreadState>)>,
    attempts: usize,
) -> Result<Vec<ThreadSnapshot>, WalkError> {
    let mut snapshots = Vec::with_capacity(threads.len());
    for (thread, state) in threads {
        let mut attempt = 1;
        let stack = loop {
            match walker.stack(thread.ec) {
                Err(error) if attempt < attempts && may_retry(&error) => attempt += 1,
                other => break other,
            }
        };
        let (frames, error) = match stack {
            Ok(frames) => (frames, None),
            Err(error) if may_retry(&error) => (Vec::new(), Some(error.to_string())),
            Err(error) => return Err(error),
        };
        let frames = frames
            .iter()
            .map(|frame| match walker.functions.get(frame.function) {
                Some(function) => SnapshotFrame {
                    name: function.name.clone(),
                    path: function.path.clone(),
                    line: frame.line,
                    kind: function.kind,
                },
                // The walker interns every function it returns, so this
                // only guards against a bug there.
                None => SnapshotFrame {
                    name: format!("<function {}>", frame.function),
                    path: "unknown".into(),
                    line: frame.line,
                    kind: FrameKind::Synthetic,
                },
            })
            .collect();
        snapshots.push(ThreadSnapshot {
            name: walker.thread_name(&thread),
            tid: thread.tid,
            state,
            frames,
            error,
        });
    }
    Ok(snapshots)
}
