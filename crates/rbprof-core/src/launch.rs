//! Launch mode: starts a command as a child of rbprof so that it can be
//! profiled from its first Ruby frame, and waits for its exit on a native
//! thread.
//!
//! The child is forked here rather than by Node: libuv reaps only the
//! children it spawned itself, so the waiter thread below is the only one
//! that calls `waitpid` on this pid.

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The end of a launched child: its exit code or the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildExit {
    /// The exit status, when the child exited normally.
    pub code: Option<i32>,
    /// The signal that killed the child, otherwise.
    pub signal: Option<i32>,
}

impl ChildExit {
    /// Returns the status a shell reports: the exit code, or 128 plus the
    /// signal number.
    pub fn shell_status(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }
}

/// The user that `sudo` ran rbprof for, from `SUDO_UID` and `SUDO_GID`.
struct InvokingUser {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

impl InvokingUser {
    /// Reads the invoking user when rbprof runs as root under sudo. The
    /// supplementary groups are looked up here, before the fork, because
    /// `initgroups` reads files and is not safe between fork and exec.
    fn from_sudo() -> Option<InvokingUser> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let uid = std::env::var("SUDO_UID").ok()?.parse().ok()?;
        let gid = std::env::var("SUDO_GID").ok()?.parse().ok()?;
        if uid == 0 {
            return None;
        }
        let groups = std::env::var("SUDO_USER")
            .ok()
            .and_then(|user| group_list(&user, gid))
            .unwrap_or_else(|| vec![gid]);
        Some(InvokingUser { uid, gid, groups })
    }
}

/// Returns the groups of `user`, with `gid` among them.
fn group_list(user: &str, gid: libc::gid_t) -> Option<Vec<libc::gid_t>> {
    let name = CString::new(user).ok()?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..2 {
        let mut count = groups.len() as libc::c_int;
        // SAFETY: `name` is NUL-terminated and `groups` has room for
        // `count` entries; getgrouplist writes at most that many and sets
        // `count` to the number it needs.
        let found =
            unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if found >= 0 {
            groups.truncate(count as usize);
            return Some(groups);
        }
        groups.resize(count.max(0) as usize, 0);
    }
    None
}

#[derive(Default)]
struct ExitState {
    exit: Option<ChildExit>,
}

/// A child that rbprof started. A native thread waits for its exit, so its
/// status is kept until a caller asks for it.
pub struct Child {
    pid: i32,
    state: Arc<(Mutex<ExitState>, Condvar)>,
}

impl Child {
    /// Starts `command` (a program looked up in `PATH`, then its
    /// arguments) with rbprof's stdin, stdout and stderr, its environment
    /// and its process group. Returns once the program has been executed,
    /// or an error when it could not be, such as a program not found.
    ///
    /// The child receives SIGTERM when rbprof dies, so a profiled server
    /// stops with rbprof even after `kill -9`. The signal is sent when the
    /// thread that called `launch` ends, so call it from a thread that
    /// lives as long as the process, such as Node's main thread. Under
    /// sudo, the child runs as the invoking user while rbprof keeps root.
    pub fn launch(command: &[String]) -> Result<Child> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| Error::InvalidArgument("the command to launch is empty".into()))?;
        let user = InvokingUser::from_sudo();
        // SAFETY: getpid has no preconditions and cannot fail.
        let parent = unsafe { libc::getpid() };

        let mut builder = Command::new(program);
        builder.args(args);
        // SAFETY: the closure runs between fork and exec, and calls only
        // async-signal-safe syscalls on values prepared before the fork.
        unsafe {
            builder.pre_exec(move || {
                inherit_stdio()?;
                if let Some(user) = &user {
                    drop_privileges(user)?;
                }
                // Changing the user clears the parent-death signal, so it
                // is set last.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // rbprof may have died before the prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(128 + libc::SIGTERM);
                }
                Ok(())
            });
        }
        let child = builder.spawn().map_err(|source| Error::LaunchFailed {
            program: program.clone(),
            source,
        })?;
        let pid = child.id() as i32;

        let state = Arc::new((Mutex::new(ExitState::default()), Condvar::new()));
        let waiter_state = Arc::clone(&state);
        std::thread::Builder::new()
            .name(format!("rbprof-wait-{pid}"))
            .spawn(move || {
                let exit = wait_for_exit(pid);
                let (lock, ready) = &*waiter_state;
                lock.lock().unwrap_or_else(|p| p.into_inner()).exit = Some(exit);
                ready.notify_all();
            })
            .map_err(|error| Error::io("starting the thread that waits for the child", error))?;
        Ok(Child { pid, state })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Returns how the child ended, or `None` while it runs.
    pub fn exit(&self) -> Option<ChildExit> {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner()).exit
    }

    /// Waits up to `timeout` for the child to end.
    pub fn wait(&self, timeout: Duration) -> Option<ChildExit> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.exit.is_some() {
                return state.exit;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Passes a signal that rbprof received on to the child. SIGINT and
    /// SIGQUIT are not passed while rbprof's process group, which the child
    /// shares, is the terminal's foreground group, because Ctrl+C and
    /// Ctrl+\ there already reached the child. Returns whether the signal
    /// was sent.
    pub fn forward_signal(&self, signal: i32) -> Result<bool> {
        if self.exit().is_some() {
            return Ok(false);
        }
        let from_terminal = signal == libc::SIGINT || signal == libc::SIGQUIT;
        if from_terminal && in_terminal_foreground() {
            return Ok(false);
        }
        // SAFETY: kill has no memory preconditions. The pid is not reaped
        // until the waiter thread records the exit checked above, so it
        // cannot belong to another process yet.
        if unsafe { libc::kill(self.pid, signal) } != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ESRCH) {
                return Ok(false);
            }
            return Err(Error::io(
                format!("sending signal {signal} to process {}", self.pid),
                error,
            ));
        }
        Ok(true)
    }
}

/// How long the waiter sleeps after it saw the child in a trace stop.
const TRACE_STOP_RECHECK: Duration = Duration::from_millis(10);

/// Waits until the child ends, reaps it and returns how it ended.
///
/// While the sampler thread pauses the child with ptrace, the kernel
/// reports the child's trace stops to any thread of this process that
/// waits for it, because this process is also its parent. So the child's
/// state is looked at with `WNOWAIT`, which leaves a stop for the pause
/// that waits for it, and the child is reaped only once it has exited.
fn wait_for_exit(pid: i32) -> ChildExit {
    let unknown = ChildExit {
        code: None,
        signal: None,
    };
    loop {
        // SAFETY: an all-zero siginfo_t is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid siginfo_t for waitid to fill.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if result != 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // Other than for EINTR, waitid fails for a pid that is not our
            // child, which the spawn rules out; the state stays unknown.
            return unknown;
        }
        if matches!(
            info.si_code,
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
        ) {
            break;
        }
        std::thread::sleep(TRACE_STOP_RECHECK);
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for waitpid to fill.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return unknown;
        }
    }
    if libc::WIFEXITED(status) {
        ChildExit {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    } else if libc::WIFSIGNALED(status) {
        ChildExit {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    } else {
        unknown
    }
}

/// Tells whether rbprof's process group is the foreground group of its
/// controlling terminal, the group that Ctrl+C and Ctrl+\ signal.
fn in_terminal_foreground() -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call.
    let foreground = unsafe { libc::tcgetpgrp(tty.as_raw_fd()) };
    // SAFETY: getpgrp has no preconditions and cannot fail.
    foreground >= 0 && foreground == unsafe { libc::getpgrp() }
}

/// Clears close-on-exec on stdin, stdout and stderr. Node sets it on its
/// own standard streams, and `Command` leaves inherited descriptors as
/// they are, so without this the program would start with them closed.
fn inherit_stdio() -> io::Result<()> {
    for fd in 0..=2 {
        // SAFETY: fcntl on a descriptor number reads or changes only its
        // flags, and a closed descriptor returns an error.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC == 0 {
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Switches the forked child to the invoking user: groups first, then the
/// group id, then the user id, after which the rest are no longer allowed.
fn drop_privileges(user: &InvokingUser) -> io::Result<()> {
    // SAFETY: `groups` is a valid array of that length, and these calls
    // only change the credentials of the calling process.
    unsafe {
        if libc::setgroups(user.groups.len(), user.groups.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(user.gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(user.uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(args: &[&str]) -> Child {
        let command: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Child::launch(&command).unwrap()
    }

    #[test]
    fn exit_code_is_passed_through() {
        let child = launch(&["sh", "-c", "exit 3"]);
        let exit = child.wait(Duration::from_secs(10)).unwrap();
        assert_eq!(exit.code, Some(3));
        assert_eq!(exit.shell_status(), 3);
    }

    #[test]
    fn forwarded_signal_ends_child() {
        let child = launch(&["sleep", "30"]);
        assert!(child.forward_signal(libc::SIGTERM).unwrap());
        let exit = child.wait(Duration::from_secs(10)).unwrap();
        assert_eq!(exit.signal, Some(libc::SIGTERM));
        assert_eq!(exit.shell_status(), 143);
        assert!(!child.forward_signal(libc::SIGTERM).unwrap());
    }

    #[test]
    fn missing_program_is_an_error() {
        let command = vec!["rbprof-no-such-program".to_string()];
        let error = Child::launch(&command).err().unwrap();
        assert_eq!(error.code(), "ERR_LAUNCH_FAILED");
        assert!(
            error.to_string().contains("rbprof-no-such-program"),
            "{error}"
        );
    }

    #[test]
    fn empty_command_is_invalid() {
        let error = Child::launch(&[]).err().unwrap();
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
    }
}
