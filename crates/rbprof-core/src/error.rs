//! Errors that callers branch on. Each has a stable code that the Node
//! binding passes to JavaScript unchanged, and a hint with the user's next
//! step.

use std::io;

/// An error from opening or sampling a Ruby process, or reading its core
/// file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: i32 },

    #[error("process {pid} is not a Ruby process: {reason}")]
    NotRuby { pid: i32, reason: String },

    #[error("Ruby {version} is not supported yet (supported: {supported})")]
    UnsupportedVersion { version: String, supported: String },

    #[error("permission denied while {action} of process {pid}")]
    PermissionDenied { pid: i32, action: String },

    #[error("permission denied while pausing the threads of process {pid}: {reason}")]
    PauseDenied { pid: i32, reason: String },

    #[error("process {pid} exited")]
    ProcessExited { pid: i32 },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("failed to read the Ruby VM of process {pid}: {reason}")]
    VmUnreadable { pid: i32, reason: String },

    #[error("{path} is not a usable core file: {reason}")]
    InvalidCore { path: String, reason: String },

    #[error("core file {path}: {reason}")]
    CoreNotRuby { path: String, reason: String },

    #[error("core file {path} does not exist")]
    CoreMissing { path: String },

    #[error("--binary does not match core file {path}: {reason}")]
    CoreBinaryMismatch { path: String, reason: String },

    #[error("failed to read the Ruby VM from core file {path}: {reason}")]
    CoreVmUnreadable { path: String, reason: String },

    #[error("failed to start {program:?}: {source}")]
    LaunchFailed {
        program: String,
        #[source]
        source: io::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// Hint shown with [`Error::PermissionDenied`]: the capability to add and
/// where to add it in Docker and Kubernetes.
pub const PERMISSION_HINT: &str = concat!(
    "Reading another process's memory needs the same user as the target, ",
    "or root with the SYS_PTRACE capability. Run rbprof as root, or in ",
    "Docker add `--cap-add SYS_PTRACE`; in Kubernetes add to the container:\n",
    "  securityContext:\n",
    "    capabilities:\n",
    "      add: [\"SYS_PTRACE\"]",
);

/// Hint shown with [`Error::PauseDenied`]: what else ptrace(2) needs
/// besides the right to read the memory, and the mode that needs no
/// ptrace.
pub const PAUSE_HINT: &str = concat!(
    "Pausing stops the threads with ptrace(2). A container's seccomp ",
    "profile may reject ptrace where memory reads work: add the SYS_PTRACE ",
    "capability (Docker: `--cap-add SYS_PTRACE`). With ",
    "kernel.yama.ptrace_scope set to 2 only root with CAP_SYS_PTRACE may ",
    "pause a process, and at 3 no one may. Only one tracer at a time may ",
    "attach, so detach a debugger such as gdb or strace first. Or record ",
    "without pausing: `--nonblocking`.",
);

impl Error {
    /// Returns the stable code that JavaScript callers branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoSuchProcess { .. } => "ERR_NO_SUCH_PROCESS",
            Error::NotRuby { .. } => "ERR_NOT_RUBY",
            Error::UnsupportedVersion { .. } => "ERR_UNSUPPORTED_VERSION",
            Error::PermissionDenied { .. } | Error::PauseDenied { .. } => "ERR_PERMISSION_DENIED",
            Error::ProcessExited { .. } => "ERR_PROCESS_EXITED",
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::VmUnreadable { .. } => "ERR_VM_UNREADABLE",
            Error::InvalidCore { .. } => "ERR_INVALID_CORE",
            Error::CoreNotRuby { .. } => "ERR_NOT_RUBY",
            Error::CoreMissing { .. } => "ERR_INVALID_CORE",
            Error::CoreBinaryMismatch { .. } => "ERR_INVALID_ARGUMENT",
            Error::CoreVmUnreadable { .. } => "ERR_VM_UNREADABLE",
            Error::LaunchFailed { .. } => "ERR_LAUNCH_FAILED",
            Error::Io { .. } => "ERR_IO",
        }
    }

    /// Returns the user's next step, for errors that have one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoSuchProcess { .. } => Some(
                "Check the pid with `ps aux | grep ruby`; inside a container, \
                 the app is often pid 1."
                    .into(),
            ),
            Error::NotRuby { .. } => Some(
                "Point --pid at the ruby process itself, not at a shell or a \
                 wrapper script that started it."
                    .into(),
            ),
            Error::UnsupportedVersion { .. } => Some(
                "If this build shares its struct layout with a supported release \
                 (`rbprof --supported-versions`), pass that release with \
                 `--force-version X.Y.Z`."
                    .into(),
            ),
            Error::PermissionDenied { .. } => Some(PERMISSION_HINT.into()),
            Error::PauseDenied { .. } => Some(PAUSE_HINT.into()),
            Error::VmUnreadable { .. } => Some(
                "The process may still be starting; try again in a second. If \
                 it persists, the Ruby build may use a layout rbprof does not \
                 know: try --force-version."
                    .into(),
            ),
            Error::InvalidCore { .. } => Some(
                "rbprof reads ELF core files of x86_64 Linux processes, as \
                 `gcore PID` or the kernel write them. A core cut short by a \
                 full disk or an interrupted copy cannot be read: write or \
                 copy it again."
                    .into(),
            ),
            Error::CoreMissing { .. } => Some(
                "Check the path. `gcore PID` writes the core of a running \
                 process."
                    .into(),
            ),
            Error::CoreBinaryMismatch { .. } => Some(
                "Pass the libruby (or static ruby executable) of the exact \
                 build that the process ran: `readelf -n FILE` shows a \
                 file's build ID. Without --binary, rbprof reads the file \
                 that the core names."
                    .into(),
            ),
            Error::CoreNotRuby { .. } => Some(
                "If the process ran Ruby, the file that contains its VM \
                 (libruby or the ruby executable) may be missing on this \
                 machine: pass that exact file with --binary PATH."
                    .into(),
            ),
            Error::CoreVmUnreadable { .. } => Some(
                "Check that the Ruby binary (the file recorded in the core, or \
                 --binary) is the exact build the process ran, and that the \
                 core contains the process's anonymous memory, as gcore writes \
                 it. For a build whose layout rbprof does not know, try \
                 --force-version."
                    .into(),
            ),
            Error::LaunchFailed { source, .. } if source.kind() == io::ErrorKind::NotFound => Some(
                "Check the spelling of the command, or give its full path; \
                     rbprof looks it up in PATH."
                    .into(),
            ),
            _ => None,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_hint_keeps_yaml_indentation() {
        let lines: Vec<&str> = PERMISSION_HINT.lines().collect();
        assert!(lines.contains(&"  securityContext:"));
        assert!(lines.contains(&"    capabilities:"));
        assert!(lines.contains(&"      add: [\"SYS_PTRACE\"]"));
    }
}
