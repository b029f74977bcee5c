//! The Ruby side: version detection, layouts, and the stack walker.

pub mod gc;
pub mod layout;
pub mod lines;
pub mod objects;
pub mod symbols;
pub mod walker;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::memory::{CoreFile, CoreMemory, MemoryError, ProcessMemory, RemoteMemory};
use crate::process::core::CoreView;
use crate::process::{self, LiveProcess, ProcessView, RubyBinary, TaskState};
use crate::sample::ThreadState;
use layout::{Layout, Version};
use walker::{RubyThread, Walker};

/// How long `open` waits for a process that is still starting (its VM not
/// set up yet, or caught in the middle of exec).
const STARTUP_WAIT: Duration = Duration::from_secs(2);

/// Tells whether the process runs: it exists and is not a zombie.
fn running(pid: i32) -> bool {
    match process::task_state(pid, pid) {
        Some(state) => state.state != b'Z' && state.state != b'X',
        None => false,
    }
}

/// A Ruby process ready to be sampled, or to be read from its core file.
pub struct RubyProcess<M: RemoteMemory = ProcessMemory> {
    pub pid: i32,
    pub version: String,
    pub layout: &'static Layout,
    pub binary_path: String,
    /// Address of the `ruby_current_vm_ptr` variable.
    pub vm_ptr_address: u64,
    /// Address of the VM's global symbol table, where it was found.
    pub symbol_table: Option<u64>,
    /// Location of the VM's during-GC bit, when `rb_during_gc` showed it.
    pub gc_flag: Option<gc::GcFlag>,
    pub walker: Walker<M>,
    /// Things the user should know, such as an unverified layout.
    pub warnings: Vec<String>,
    /// The mappings of the Ruby binary, as (start, file offset, inode). A
    /// forked child with the same mappings runs the same image at the same
    /// addresses.
    pub binary_mappings: Vec<(u64, u64, u64)>,
}

/// Reads the NUL-terminated `ruby_version` string.
fn read_version(memory: &impl RemoteMemory, binary: &RubyBinary) -> Result<String, MemoryError> {
    let address = binary
        .address("ruby_version")
        .ok_or(MemoryError::Unmapped { addr: 0, len: 0 })?;
    let mut buf = [0u8; 32];
    memory.read(address, &mut buf)?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

fn memory_error(pid: i32, error: MemoryError) -> Error {
    match error {
        MemoryError::PermissionDenied => Error::PermissionDenied {
            pid,
            action: "reading the memory".into(),
        },
        MemoryError::ProcessGone => Error::ProcessExited { pid },
        other => Error::VmUnreadable {
            pid,
            reason: other.to_string(),
        },
    }
}

/// Offsets of `tid` in glibc's `struct pthread` on x86_64, newest first.
/// Each is checked against the process's real thread ids before use.
const PTHREAD_TID_OFFSETS: [u64; 1] = [0x2d0];

/// Finds where glibc keeps kernel thread ids, for Rubies that do not
/// record them: an offset is accepted when every Ruby thread's id is one of
/// the process's tasks and the main thread's id is the pid.
fn find_pthread_tid<M: RemoteMemory>(view: &impl ProcessView, walker: &mut Walker<M>) -> bool {
    let pid = view.pid();
    let tasks = view.thread_ids();
    for offset in PTHREAD_TID_OFFSETS {
        walker.set_pthread_tid_offset(Some(offset));
        let Ok(threads) = walker.threads() else {
            continue;
        };
        let all_known = threads.iter().all(|t| tasks.contains(&t.tid));
        if all_known && threads.iter().any(|t| t.tid == pid) {
            return true;
        }
    }
    walker.set_pthread_tid_offset(None);
    false
}

/// Picks the layout for a detected version, or for `force_version`.
pub fn choose_layout(
    detected: &str,
    force_version: Option<&str>,
) -> Result<(&'static Layout, Vec<String>)> {
    let wanted = force_version.unwrap_or(detected);
    let version = Version::parse(wanted).ok_or_else(|| match force_version {
        Some(forced) => Error::InvalidArgument(format!(
            "--force-version {forced:?} is not a version like 3.1.2"
        )),
        None => Error::UnsupportedVersion {
            version: detected.into(),
            supported: layout::supported_list(),
        },
    })?;
    let layout = layout::find(version).ok_or_else(|| Error::UnsupportedVersion {
        version: wanted.into(),
        supported: layout::supported_list(),
    })?;
    let mut warnings = Vec::new();
    if !layout.verified {
        warnings.push(format!(
            "the layout for Ruby {}-{} was derived from headers but not yet \
             confirmed on a live process; stacks may fail to read",
            layout.from, layout.through
        ));
    }
    if force_version.is_some() && force_version != Some(detected) {
        warnings.push(format!(
            "using the layout of Ruby {wanted} for a process that reports Ruby {detected}"
        ));
    }
    Ok((layout, warnings))
}

impl RubyProcess {
    /// Opens a Ruby process: finds the VM, its version and layout, and
    /// checks that the layout reads a consistent thread list.
    pub fn open(pid: i32, force_version: Option<&str>) -> Result<RubyProcess> {
        let started = Instant::now();
        loop {
            match Self::try_open(pid, force_version) {
                Err(Error::VmUnreadable { .. } | Error::NotRuby { .. })
                    if started.elapsed() < STARTUP_WAIT && process::exists(pid) =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Opens a process that rbprof has just launched. Unlike `open`, it
    /// waits for the VM as long as the process runs, because the requires
    /// of a large application can take longer than any fixed wait. A
    /// process that is not Ruby gets `STARTUP_WAIT` to exec one, which
    /// covers wrappers such as `env ruby` or `bundle exec`.
    pub fn open_launched(pid: i32, force_version: Option<&str>) -> Result<RubyProcess> {
        let started = Instant::now();
        loop {
            let error = match Self::try_open(pid, force_version) {
                Err(error) => error,
                other => return other,
            };
            let retry = match error {
                Error::VmUnreadable { .. } => true,
                Error::NotRuby { .. } => started.elapsed() < STARTUP_WAIT,
                _ => false,
            };
            if !retry || !running(pid) {
                return Err(error);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a process with one attempt and no waiting, for a caller that
    /// retries on its own schedule.
    pub fn open_once(pid: i32, force_version: Option<&str>) -> Result<RubyProcess> {
        Self::try_open(pid, force_version)
    }

    fn try_open(pid: i32, force_version: Option<&str>) -> Result<RubyProcess> {
        let view = LiveProcess::new(pid)?;
        Self::open_view(ProcessMemory::new(pid), &view, force_version)
    }

    /// Opens `child`, a process forked from this one that has not called
    /// exec, without reading the binary again: a fork copies the address
    /// space, so every address found in the parent is valid in the child.
    /// Returns `Ok(None)` when the child maps the binary differently (it
    /// ran exec), so that it must be opened from scratch.
    pub fn open_fork(&self, child: i32) -> Result<Option<RubyProcess>> {
        let maps = process::read_maps(child)?;
        if own_mappings(&maps, &self.binary_path) != self.binary_mappings {
            return Ok(None);
        }
        let mut walker = Walker::new(
            ProcessMemory::new(child),
            self.layout,
            self.vm_ptr_address,
            self.symbol_table,
        );
        walker.set_pthread_tid_offset(self.walker.pthread_tid_offset());
        match walker.threads() {
            Ok(threads) if !threads.is_empty() => {}
            Ok(_) => {
                return Err(Error::VmUnreadable {
                    pid: child,
                    reason: "the VM lists no threads".into(),
                })
            }
            Err(error) if error.process_gone() => return Err(Error::ProcessExited { pid: child }),
            Err(error) => {
                return Err(Error::VmUnreadable {
                    pid: child,
                    reason: error.to_string(),
                })
            }
        }
        Ok(Some(RubyProcess {
            pid: child,
            version: self.version.clone(),
            layout: self.layout,
            binary_path: self.binary_path.clone(),
            vm_ptr_address: self.vm_ptr_address,
            symbol_table: self.symbol_table,
            gc_flag: self.gc_flag,
            walker,
            warnings: Vec::new(),
            binary_mappings: self.binary_mappings.clone(),
        }))
    }

    /// Tells whether the process still maps the Ruby binary where it did
    /// when it was opened; it does not after an exec.
    pub fn same_image(&self) -> bool {
        match process::read_maps(self.pid) {
            Ok(maps) => own_mappings(&maps, &self.binary_path) == self.binary_mappings,
            Err(_) => false,
        }
    }

    /// Finds a thread's kernel id in this process and classifies the
    /// thread, or returns `None` when the thread is not in this process.
    ///
    /// A forked child inherits its parent's thread list. Ruby then keeps
    /// only the thread that called fork, which becomes the VM's main
    /// thread (`main_thread`) and the child's only task, whose id is the
    /// process id. Ruby 3.1 does not update that thread's recorded id, so
    /// it still names the parent's thread. Other threads whose id is not a
    /// task here are the parent's, listed until Ruby drops them.
    pub fn resolve_thread(
        &self,
        thread: &RubyThread,
        main_thread: Option<u64>,
    ) -> Option<(i32, ThreadState)> {
        self.resolve_thread_with(thread, main_thread, |tid| {
            process::task_state(self.pid, tid)
        })
    }

    /// Works like [`Self::resolve_thread`], with the kernel's task states
    /// from `task_state` instead of /proc. While the process is paused,
    /// /proc shows every thread stopped, so the states read before the
    /// pause stand in.
    pub fn resolve_thread_with(
        &self,
        thread: &RubyThread,
        main_thread: Option<u64>,
        task_state: impl Fn(i32) -> Option<TaskState>,
    ) -> Option<(i32, ThreadState)> {
        if thread.tid <= 0 {
            return Some((thread.tid, self.classify(thread, None)));
        }
        if let Some(task) = task_state(thread.tid) {
            return Some((thread.tid, self.classify(thread, Some(task.on_cpu()))));
        }
        if main_thread != Some(thread.address) {
            return None;
        }
        let task = task_state(self.pid)?;
        Some((self.pid, self.classify(thread, Some(task.on_cpu()))))
    }

    /// Classifies a thread from the kernel's view (on a CPU or not) and
    /// Ruby's (runnable or sleeping).
    pub fn thread_state(&self, thread: &RubyThread) -> ThreadState {
        self.thread_state_with(thread, |tid| process::task_state(self.pid, tid))
    }

    /// Works like [`Self::thread_state`], with the kernel's task states
    /// from `task_state` instead of /proc.
    pub fn thread_state_with(
        &self,
        thread: &RubyThread,
        task_state: impl Fn(i32) -> Option<TaskState>,
    ) -> ThreadState {
        let on_cpu = if thread.tid > 0 {
            task_state(thread.tid).map(|s| s.on_cpu())
        } else {
            None
        };
        self.classify(thread, on_cpu)
    }

    fn classify(&self, thread: &RubyThread, on_cpu: Option<bool>) -> ThreadState {
        let runnable = self.layout.constants.THREAD_RUNNABLE;
        match on_cpu {
            Some(true) => ThreadState::Running,
            // Without a kernel thread id, the GVL holder is the best guess of
            // the thread on a CPU.
            None if thread.holds_gvl => ThreadState::Running,
            _ if thread.status as u64 == runnable && !thread.holds_gvl => {
                ThreadState::WaitingForGvl
            }
            _ => ThreadState::Blocked,
        }
    }
}

impl RubyProcess<CoreMemory> {
    /// Opens the process recorded in an ELF core file. With `binary`, that
    /// file supplies the symbols and the undumped bytes of the Ruby binary
    /// recorded in the core, which may not exist on this machine.
    pub fn open_core(
        core: &Path,
        binary: Option<&Path>,
        force_version: Option<&str>,
    ) -> Result<RubyProcess<CoreMemory>> {
        let path = core.display().to_string();
        if !core.exists() {
            return Err(Error::CoreMissing { path });
        }
        let core = CoreFile::open(core).map_err(|reason| Error::InvalidCore {
            path: path.clone(),
            reason,
        })?;
        let view = CoreView::new(Arc::new(core), binary);
        if let Some(reason) = view.substitute_mismatch() {
            return Err(Error::CoreBinaryMismatch { path, reason });
        }
        // The shared opener names the pid in its errors, but a core file is
        // named by its path.
        Self::open_view(view.memory(), &view, force_version).map_err(|error| match error {
            Error::NotRuby { reason, .. } => Error::CoreNotRuby { path, reason },
            Error::VmUnreadable { reason, .. } => Error::CoreVmUnreadable { path, reason },
            other => other,
        })
    }
}

impl<M: RemoteMemory> RubyProcess<M> {
    /// Finds the VM through `view` and `memory`, picks the layout of its
    /// version, and checks that the layout reads a consistent thread list.
    /// Live processes and core files share this path.
    pub fn open_view(
        memory: M,
        view: &impl ProcessView,
        force_version: Option<&str>,
    ) -> Result<RubyProcess<M>> {
        let pid = view.pid();
        let binary = process::find_ruby_binary(view)?;
        let version = read_version(&memory, &binary).map_err(|e| memory_error(pid, e))?;
        let (layout, warnings) = choose_layout(&version, force_version)?;

        let vm_ptr_address = symbols::locate_vm_ptr(&binary).ok_or_else(|| Error::NotRuby {
            pid,
            reason: format!(
                "{} neither exports ruby_current_vm_ptr nor has the functions \
                 that lead to it",
                binary.path
            ),
        })?;
        let objects = objects::Objects::new(&memory, layout);
        let symbol_table = symbols::locate_table(&binary, layout)
            .into_iter()
            .find(|&table| symbols::check_table(&objects, table));
        let mut walker = Walker::new(memory, layout, vm_ptr_address, symbol_table);
        let mut warnings = warnings;
        if !walker.has_symbol_table() {
            warnings.push(
                "the VM's symbol table was not found, so C functions are shown \
                 as <c function> and methods without their class"
                    .into(),
            );
        }

        if walker.needs_pthread_tid() && !find_pthread_tid(view, &mut walker) {
            warnings.push(
                "kernel thread ids are unknown for this Ruby, so a thread counts \
                 as on a CPU only while it holds the GVL"
                    .into(),
            );
        }

        match walker.threads() {
            Ok(threads) if !threads.is_empty() => {}
            Ok(_) => {
                return Err(Error::VmUnreadable {
                    pid,
                    reason: "the VM lists no threads".into(),
                })
            }
            Err(error) if error.permission_denied() => {
                return Err(Error::PermissionDenied {
                    pid,
                    action: "reading the memory".into(),
                })
            }
            Err(error) if error.process_gone() => return Err(Error::ProcessExited { pid }),
            Err(error) => {
                return Err(Error::VmUnreadable {
                    pid,
                    reason: match force_version {
                        Some(forced) => format!(
                            "with the layout for Ruby {}-{} that --force-version {forced} \
                             chose: {error}; try without --force-version",
                            layout.from, layout.through
                        ),
                        None => format!(
                            "with the layout for Ruby {}-{}: {error}",
                            layout.from, layout.through
                        ),
                    },
                })
            }
        }

        let gc_flag = gc::GcFlag::locate(&binary);
        let binary_mappings = own_mappings(view.mappings(), &binary.path);
        Ok(RubyProcess {
            pid,
            version,
            layout,
            binary_path: binary.path,
            vm_ptr_address,
            symbol_table,
            gc_flag,
            walker,
            warnings,
            binary_mappings,
        })
    }
}

/// Returns the mappings of the file at `path` as (start, offset, inode).
fn own_mappings(maps: &[process::maps::Mapping], path: &str) -> Vec<(u64, u64, u64)> {
    maps.iter()
        .filter(|m| m.path.as_deref() == Some(path))
        .map(|m| (m.start, m.offset, m.inode))
        .collect()
}
