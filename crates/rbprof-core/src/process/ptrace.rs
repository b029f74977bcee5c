//! Stops every thread of a process for the length of one read, with
//! ptrace(2), so that no stack changes while it is read.
//!
//! A pause attaches to each thread with `PTRACE_SEIZE`, stops it with
//! `PTRACE_INTERRUPT` and waits until the kernel reports the stop. Then
//! the caller reads, and `PTRACE_DETACH` restarts every thread. The
//! kernel accepts requests on a tracee only from the thread that attached
//! it, so a [`Tracer`] is not `Send`. When that thread exits, the kernel
//! detaches and restarts all of its tracees, which is why nothing stays
//! stopped after the tracing thread ends, even when rbprof is killed with
//! SIGKILL. Keep a `Tracer` on a thread that ends with the recording, such
//! as the sampler thread, or use [`run_paused`], which makes one.

use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::{self, TaskState};

/// How long a pause waits for the threads to stop. A thread still running
/// then, such as one in an uninterruptible system call (state `D`), is
/// read while it runs. It stays attached and stops by itself once it
/// leaves the kernel, and a later pause or the tracer's drop restarts it.
pub const STOP_TIMEOUT: Duration = Duration::from_millis(20);

/// Waiting after which the task states of threads that have not reported
/// a stop are read from /proc, and then again at this interval.
const STATE_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// Listings of the thread ids per pause. A thread that has not stopped
/// yet may start another one, so the threads are listed again until a
/// listing finds no new thread or this limit is reached.
const MAX_LISTINGS: usize = 8;

/// How long dropping a tracer waits for threads that had not stopped by
/// their pause's deadline.
const DROP_TIMEOUT: Duration = Duration::from_millis(100);

/// `PTRACE_EVENT_STOP` of `<linux/ptrace.h>`: the stop that
/// `PTRACE_INTERRUPT` causes, and the form a group-stop takes for a
/// thread attached with `PTRACE_SEIZE`.
const PTRACE_EVENT_STOP: i32 = 128;

/// The address argument of ptrace requests that take none.
const NULL: *mut libc::c_void = std::ptr::null_mut();

/// The state of an attached thread, as far as the tracer has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracee {
    /// Interrupted but not yet reported stopped. `waited` is false for a
    /// thread that is not worth waiting for: it was in state `D`, or it
    /// did not stop in an earlier pause.
    Stopping { waited: bool },
    /// In a ptrace stop. `signal` is the signal that the thread was about
    /// to handle when it stopped, which the detach delivers, or 0.
    Stopped { signal: i32 },
    /// Exited, so there is nothing to detach.
    Gone,
}

/// Stops and restarts the threads of one process. Create it on the thread
/// that will use it, and keep it there.
pub struct Tracer {
    pid: i32,
    /// Threads still attached after an earlier pause, because they had not
    /// stopped by its deadline or could not be detached.
    attached: Vec<i32>,
    /// Ptrace requests must come from the thread that attached.
    _thread_bound: PhantomData<*const ()>,
}

impl Tracer {
    pub fn new(pid: i32) -> Tracer {
        Tracer {
            pid,
            attached: Vec::new(),
            _thread_bound: PhantomData,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Stops every thread of the process, also threads started while the
    /// others are being stopped, and returns the pause. Dropping the pause,
    /// or [`Pause::resume`], restarts them.
    ///
    /// Returns [`Error::PauseDenied`] when the kernel does not allow
    /// tracing a live thread, and [`Error::NoSuchProcess`] when the process
    /// is gone. Threads stopped before the error are restarted.
    pub fn pause(&mut self) -> Result<Pause<'_>> {
        let pid = self.pid;
        let started = Instant::now();
        let deadline = started + STOP_TIMEOUT;
        let carried = std::mem::take(&mut self.attached);
        let mut pause = Pause {
            tracer: self,
            threads: HashMap::new(),
            states: HashMap::new(),
            started,
            relisted: 0,
            resumed: false,
        };
        for tid in carried {
            pause
                .threads
                .insert(tid, Tracee::Stopping { waited: false });
        }
        for listing in 0..MAX_LISTINGS {
            let tids = process::task_ids(pid);
            if tids.is_empty() && !process::exists(pid) {
                return Err(Error::NoSuchProcess { pid });
            }
            let mut new_threads = 0;
            for tid in tids {
                if pause.threads.contains_key(&tid) {
                    continue;
                }
                new_threads += 1;
                if let Some(state) = process::task_state(pid, tid) {
                    pause.states.insert(tid, state);
                }
                match attach(tid) {
                    Ok(()) => {
                        pause.threads.insert(tid, Tracee::Stopping { waited: true });
                    }
                    Err(error) => pause.attach_failed(tid, error)?,
                }
            }
            if listing > 0 {
                pause.relisted += new_threads;
            }
            if new_threads == 0 && listing > 0 {
                break;
            }
            pause.wait_for_stops(deadline);
        }
        // NOTE: a process that keeps starting threads through all the
        // listings, or a thread that missed the deadline and starts more,
        // leaves those threads running during the read. The caller sees
        // only the latter, through `running_threads`.
        Ok(pause)
    }

    /// Reads what an attached thread reported, without waiting.
    fn poll(&self, tid: i32) -> Tracee {
        // The leader's exit status belongs to the process's parent. When
        // that parent is this process (a command rbprof launched), the
        // kernel would hand the status to whichever thread of it waits
        // first. The tracer therefore polls the leader without reaping it.
        let reap = tid != self.pid;
        match wait_stop(tid, reap) {
            Report::Stopped { signal } => Tracee::Stopped { signal },
            Report::Exited => Tracee::Gone,
            Report::Nothing => self.check_state(tid),
        }
    }

    /// Classifies a thread that reported nothing by its task state: in a
    /// trace stop (its report went to another waiting thread of this
    /// process), gone, in `D`, or still on its way to the stop.
    fn check_state(&self, tid: i32) -> Tracee {
        match process::task_state(self.pid, tid).map(|s| s.state) {
            Some(b't') => Tracee::Stopped {
                signal: signal_at_stop(tid),
            },
            None | Some(b'Z' | b'X' | b'x') => Tracee::Gone,
            Some(b'D') => Tracee::Stopping { waited: false },
            Some(_) => Tracee::Stopping { waited: true },
        }
    }
}

impl Drop for Tracer {
    /// Restarts the threads that stopped after their pause ended. Threads
    /// still running after `DROP_TIMEOUT` stay attached until this thread
    /// exits, when the kernel detaches them.
    fn drop(&mut self) {
        let deadline = Instant::now() + DROP_TIMEOUT;
        loop {
            let attached = std::mem::take(&mut self.attached);
            for tid in attached {
                match self.poll(tid) {
                    Tracee::Stopped { signal } => {
                        let _ = detach(tid, signal);
                    }
                    Tracee::Gone => {}
                    Tracee::Stopping { .. } => self.attached.push(tid),
                }
            }
            if self.attached.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // NOTE: a thread that stops after this point stays stopped until
        // the thread that owns the tracer exits. The sampler thread exits
        // right after this drop; a caller that keeps its thread should
        // pause through `run_paused` instead.
    }
}

/// The threads of a process while they are stopped.
pub struct Pause<'a> {
    tracer: &'a mut Tracer,
    threads: HashMap<i32, Tracee>,
    /// Task states read just before each thread was stopped, because
    /// while stopped every thread shows `t`.
    states: HashMap<i32, TaskState>,
    started: Instant,
    relisted: usize,
    resumed: bool,
}

impl Pause<'_> {
    /// Returns the task state a thread had just before it was stopped, or
    /// `None` for a thread this pause did not attach.
    pub fn task_state(&self, tid: i32) -> Option<TaskState> {
        self.states.get(&tid).copied()
    }

    /// Counts the threads that are stopped.
    pub fn stopped_threads(&self) -> usize {
        self.threads
            .values()
            .filter(|t| matches!(t, Tracee::Stopped { .. }))
            .count()
    }

    /// Lists the threads that were attached but had not stopped by the
    /// deadline, so they run while the caller reads.
    pub fn running_threads(&self) -> Vec<i32> {
        let mut tids: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| matches!(t, Tracee::Stopping { .. }))
            .map(|(&tid, _)| tid)
            .collect();
        tids.sort_unstable();
        tids
    }

    /// Counts the threads that a second or later listing found, which
    /// started while the others were being stopped.
    pub fn relisted_threads(&self) -> usize {
        self.relisted
    }

    /// Restarts every stopped thread and returns the time from the start
    /// of the pause to the request that restarts the last thread.
    pub fn resume(mut self) -> Duration {
        self.resume_all()
    }

    fn resume_all(&mut self) -> Duration {
        self.resumed = true;
        let mut stopped = Vec::new();
        for (tid, tracee) in std::mem::take(&mut self.threads) {
            match tracee {
                Tracee::Stopped { signal } => stopped.push((tid, signal)),
                Tracee::Stopping { .. } => self.tracer.attached.push(tid),
                Tracee::Gone => {}
            }
        }
        // A restarted thread that was running may take this thread's CPU
        // for a whole time slice while the rest wait, so the threads that
        // were not running restart first.
        let was_running = |tid: i32| self.states.get(&tid).is_some_and(|s| s.on_cpu());
        stopped.sort_by_key(|&(tid, _)| (was_running(tid), tid));
        let mut last_restart = Instant::now();
        for (tid, signal) in stopped {
            last_restart = Instant::now();
            // ESRCH: the thread left its stop, which only SIGKILL does,
            // and a later poll collects its exit.
            if detach(tid, signal).is_err() {
                self.tracer.attached.push(tid);
            }
        }
        // The time this thread spends preempted after the last restart is
        // not part of the pause.
        last_restart.duration_since(self.started)
    }

    /// Handles a thread that could not be attached: it exited, or the
    /// kernel denies tracing it.
    fn attach_failed(&mut self, tid: i32, error: io::Error) -> Result<()> {
        let pid = self.tracer.pid;
        match error.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            // The kernel also returns EPERM for a thread that is exiting.
            Some(libc::EPERM) if !thread_alive(pid, tid) => Ok(()),
            Some(libc::EPERM) => {
                let reason = match tracer_pid(pid, tid) {
                    Some(tracer) if tracer != 0 => {
                        format!(
                            "thread {tid} is already traced by {}",
                            describe_tracer(tracer)
                        )
                    }
                    _ => format!("the kernel denied ptrace(PTRACE_SEIZE) on thread {tid}"),
                };
                Err(Error::PauseDenied { pid, reason })
            }
            _ => Err(Error::io(
                format!("attaching to thread {tid} of process {pid} with ptrace"),
                error,
            )),
        }
    }

    /// Polls the threads that are on their way to a stop until all have
    /// stopped or exited, or the deadline passes.
    fn wait_for_stops(&mut self, deadline: Instant) {
        let mut next_state_check = Instant::now() + STATE_CHECK_INTERVAL;
        loop {
            let mut waiting = false;
            for (&tid, tracee) in self.threads.iter_mut() {
                let Tracee::Stopping { waited } = *tracee else {
                    continue;
                };
                let reap = tid != self.tracer.pid;
                *tracee = match wait_stop(tid, reap) {
                    Report::Stopped { signal } => Tracee::Stopped { signal },
                    Report::Exited => Tracee::Gone,
                    Report::Nothing => {
                        waiting |= waited;
                        Tracee::Stopping { waited }
                    }
                };
            }
            let now = Instant::now();
            if !waiting || now >= deadline {
                return;
            }
            if now >= next_state_check {
                next_state_check = now + STATE_CHECK_INTERVAL;
                let tracer = &*self.tracer;
                for (&tid, tracee) in self.threads.iter_mut() {
                    if matches!(tracee, Tracee::Stopping { waited: true }) {
                        *tracee = tracer.check_state(tid);
                    }
                }
            }
            // The threads need a CPU to reach their stop, and on a busy
            // machine this thread may be using the one they wait for.
            std::thread::yield_now();
        }
    }
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        if !self.resumed {
            self.resume_all();
        }
    }
}

/// Runs `read` while every thread of `pid` is stopped, on a new thread
/// that ends right after, and returns its result with the length of the
/// pause. A thread that had not stopped by the deadline is detached by the
/// kernel when that thread ends, so nothing can stay stopped.
pub fn run_paused<T: Send>(
    pid: i32,
    read: impl FnOnce(&Pause<'_>) -> T + Send,
) -> Result<(T, Duration)> {
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            let mut tracer = Tracer::new(pid);
            let pause = tracer.pause()?;
            let value = read(&pause);
            Ok((value, pause.resume()))
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Pauses the process once, to find out before sampling starts whether
/// the kernel allows it. Returns the length of the pause.
pub fn check_pause(pid: i32) -> Result<Duration> {
    run_paused(pid, |_| ()).map(|((), length)| length)
}

/// Attaches to a thread and interrupts it, so that it stops.
fn attach(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE reads no memory: addr must be 0 and data contains
    // the options, none here.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, NULL, NULL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: PTRACE_INTERRUPT reads no memory. Its result is ignored:
    // after a successful seize it can fail for a thread that is exiting,
    // and the wait that follows reports that exit.
    unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, NULL, NULL) };
    Ok(())
}

/// Restarts a stopped thread and ends the tracing, delivering `signal`
/// unless it is 0.
fn detach(tid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: PTRACE_DETACH reads no memory: data is a signal number.
    if unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, NULL, signal as usize) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A change that `waitid` reported for one thread.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    Stopped { signal: i32 },
    Exited,
    Nothing,
}

/// Polls one attached thread for a stop, and for its exit when `reap`
/// is set.
fn wait_stop(tid: i32, reap: bool) -> Report {
    let mut flags = libc::WSTOPPED | libc::WNOHANG | libc::__WALL;
    if reap {
        flags |= libc::WEXITED;
    }
    // SAFETY: an all-zero siginfo_t is valid, and it stays zero (si_pid 0)
    // when no thread changed state.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid siginfo_t for waitid to fill.
    let result = unsafe { libc::waitid(libc::P_PID, tid as libc::id_t, &mut info, flags) };
    if result != 0 {
        // ECHILD: the thread is not attached to this thread any more.
        return Report::Exited;
    }
    // SAFETY: waitid filled the SIGCHLD fields, or left them zero.
    let (reporter, status) = unsafe { (info.si_pid(), info.si_status()) };
    if reporter == 0 {
        return Report::Nothing;
    }
    match info.si_code {
        libc::CLD_TRAPPED | libc::CLD_STOPPED => Report::Stopped {
            signal: pending_signal(status),
        },
        _ => Report::Exited,
    }
}

/// Returns the signal to deliver on detach for a stop whose code is
/// `status`: none after `PTRACE_INTERRUPT` or a group-stop, which carry
/// `PTRACE_EVENT_STOP` in bits 8 to 15, and the signal itself for a
/// signal-delivery-stop.
fn pending_signal(status: i32) -> i32 {
    if status >> 8 == PTRACE_EVENT_STOP {
        0
    } else {
        status & 0x7f
    }
}

/// Finds the signal of a stopped thread whose stop report went elsewhere,
/// from the siginfo of its stop.
fn signal_at_stop(tid: i32) -> i32 {
    // SAFETY: an all-zero siginfo_t is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t to `data`.
    let result = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            NULL,
            &mut info as *mut libc::siginfo_t,
        )
    };
    if result != 0 {
        return 0;
    }
    // An event stop carries the event in si_code, as waitid's status does.
    if info.si_code >> 8 == PTRACE_EVENT_STOP {
        0
    } else {
        info.si_signo
    }
}

/// Tells whether a thread exists and has not exited.
fn thread_alive(pid: i32, tid: i32) -> bool {
    matches!(
        process::task_state(pid, tid).map(|s| s.state),
        Some(state) if !matches!(state, b'Z' | b'X' | b'x')
    )
}

/// Reads `TracerPid` of one thread: the id of the thread tracing it, or
/// 0. The kernel shows the tracing thread's own id, which is the process
/// id only for a process's main thread.
pub fn tracer_pid(pid: i32, tid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    status_field(&text, "TracerPid:")
}

/// Names the process that a tracing thread belongs to, such as
/// `process 812 (gdb)`.
fn describe_tracer(tracer_tid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{tracer_tid}/status")).unwrap_or_default();
    let process = status_field(&status, "Tgid:").unwrap_or(tracer_tid);
    match std::fs::read_to_string(format!("/proc/{process}/comm")) {
        Ok(name) => format!("process {process} ({})", name.trim_end()),
        Err(_) => format!("process {process}"),
    }
}

/// Parses a numeric field of a /proc `status` file.
fn status_field(status: &str, name: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_codes_give_signals() {
        // PTRACE_INTERRUPT's stop: SIGTRAP | PTRACE_EVENT_STOP << 8.
        assert_eq!(pending_signal(libc::SIGTRAP | PTRACE_EVENT_STOP << 8), 0);
        // A group-stop of a seized thread.
        assert_eq!(pending_signal(libc::SIGSTOP | PTRACE_EVENT_STOP << 8), 0);
        assert_eq!(pending_signal(libc::SIGTERM), libc::SIGTERM);
    }

    #[test]
    fn tracer_pid_is_parsed() {
        let status = "Name:\truby\nState:\tS (sleeping)\nTracerPid:\t4242\nUid:\t0\n";
        assert_eq!(status_field(status, "TracerPid:"), Some(4242));
        assert_eq!(status_field("Name:\truby\n", "TracerPid:"), None);
    }

    /// Starts `sh -c SCRIPT` and waits for the line it prints when ready.
    fn start_shell(script: &str) -> std::process::Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        child
    }

    fn wait_for_stop(tid: i32) -> Report {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let report = wait_stop(tid, false);
            if report != Report::Nothing || Instant::now() > deadline {
                return report;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn signal_at_stop_is_delivered_on_detach() {
        let mut child = start_shell("trap 'exit 7' USR1; echo ready; while :; do :; done");
        let pid = child.id() as i32;
        // SAFETY: PTRACE_SEIZE reads no memory.
        assert_eq!(
            unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, NULL, NULL) },
            0
        );
        // SAFETY: kill has no memory preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        // A traced thread stops before it handles a signal.
        assert_eq!(
            wait_for_stop(pid),
            Report::Stopped {
                signal: libc::SIGUSR1
            }
        );
        assert_eq!(signal_at_stop(pid), libc::SIGUSR1);
        detach(pid, libc::SIGUSR1).unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }

    #[test]
    fn interrupt_stop_carries_no_signal() {
        let mut child = start_shell("echo ready; exec sleep 30");
        let pid = child.id() as i32;
        attach(pid).unwrap();
        assert_eq!(wait_for_stop(pid), Report::Stopped { signal: 0 });
        assert_eq!(signal_at_stop(pid), 0);
        detach(pid, 0).unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn own_process_has_no_tracer() {
        let pid = std::process::id() as i32;
        assert_eq!(tracer_pid(pid, pid), Some(0));
    }
}
