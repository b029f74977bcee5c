//! Facts the kernel reports about a process: its mappings, the file that contains
//! the Ruby VM, its threads and their scheduling states.

pub mod core;
pub mod elf;
pub mod maps;
pub mod ptrace;
pub mod tree;

use std::io;
use std::path::PathBuf;

use crate::error::{Error, Result};
use elf::ElfImage;
use maps::Mapping;

/// The executable or shared library that contains the Ruby VM, with its
/// symbols and where it is loaded in the target.
pub struct RubyBinary {
    /// The path in the target's own mount namespace.
    pub path: String,
    pub image: ElfImage,
    pub bias: u64,
}

impl RubyBinary {
    /// Returns the target's address of a symbol.
    pub fn address(&self, symbol: &str) -> Option<u64> {
        self.image.symbol(symbol).map(|a| a.wrapping_add(self.bias))
    }
}

/// Tells whether `/proc/PID` exists.
pub fn exists(pid: i32) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn permission_or_io(pid: i32, action: &str, error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::PermissionDenied => Error::PermissionDenied {
            pid,
            action: action.into(),
        },
        io::ErrorKind::NotFound => Error::NoSuchProcess { pid },
        _ => Error::io(format!("{action} of process {pid}"), error),
    }
}

/// Reads and parses `/proc/PID/maps`.
pub fn read_maps(pid: i32) -> Result<Vec<Mapping>> {
    if !exists(pid) {
        return Err(Error::NoSuchProcess { pid });
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| permission_or_io(pid, "reading the memory map", e))?;
    // A process we may not trace gets an empty maps file on some kernels
    // rather than EACCES.
    if text.is_empty() && exists(pid) {
        let _ = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map_err(|e| permission_or_io(pid, "reading the memory map", e))?;
    }
    Ok(maps::parse_maps(&text))
}

/// Facts about a Ruby target, besides its memory, that opening it needs:
/// its pid and threads, its mappings and the files behind them. A live process
/// provides them from `/proc`, a core file from its notes.
pub trait ProcessView {
    fn pid(&self) -> i32;

    fn mappings(&self) -> &[Mapping];

    /// Returns the path of the main executable in the target's file system,
    /// when it is known.
    fn executable(&self) -> Result<Option<String>>;

    /// Opens and parses a mapped file, whose mappings are `own`. The error
    /// is the reason, for a message that lists every file tried.
    fn open_elf(&self, path: &str, own: &[&Mapping]) -> Result<ElfImage, String>;

    /// Lists the kernel ids of the target's threads.
    fn thread_ids(&self) -> Vec<i32>;
}

/// A running process, seen through `/proc/PID`.
pub struct LiveProcess {
    pid: i32,
    mappings: Vec<Mapping>,
}

impl LiveProcess {
    /// Reads the process's memory map.
    pub fn new(pid: i32) -> Result<LiveProcess> {
        Ok(LiveProcess {
            pid,
            mappings: read_maps(pid)?,
        })
    }
}

impl ProcessView for LiveProcess {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    fn executable(&self) -> Result<Option<String>> {
        let pid = self.pid;
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| {
                let path = p.to_string_lossy();
                Some(path.trim_end_matches(" (deleted)").to_string())
            })
            .map_err(|e| permission_or_io(pid, "reading the executable path", e))
    }

    fn open_elf(&self, path: &str, own: &[&Mapping]) -> Result<ElfImage, String> {
        open_mapped_file(self.pid, path, own)
    }

    fn thread_ids(&self) -> Vec<i32> {
        task_ids(self.pid)
    }
}

/// Finds and parses the file holding the Ruby VM: a mapped libruby if
/// there is one, else the main executable when it exports `ruby_version`.
pub fn find_ruby_binary(view: &impl ProcessView) -> Result<RubyBinary> {
    let mappings = view.mappings();
    let exe = view.executable()?;

    let mut candidates: Vec<String> = Vec::new();
    for mapping in mappings {
        if let Some(path) = &mapping.path {
            if maps::is_libruby(path) && !candidates.contains(path) {
                candidates.push(path.clone());
            }
        }
    }
    if let Some(exe) = &exe {
        if !candidates.contains(exe) {
            candidates.push(exe.clone());
        }
    }

    let mut tried = Vec::new();
    for path in candidates {
        let own: Vec<&Mapping> = mappings
            .iter()
            .filter(|m| m.path.as_deref() == Some(path.as_str()))
            .collect();
        if own.is_empty() {
            continue;
        }
        let image = match view.open_elf(&path, &own) {
            Ok(image) => image,
            Err(reason) => {
                tried.push(format!("{path}: {reason}"));
                continue;
            }
        };
        if image.symbol("ruby_version").is_none() {
            tried.push(format!("{path}: no ruby_version symbol"));
            continue;
        }
        let Some(bias) = image.load_bias(&own) else {
            tried.push(format!("{path}: no loadable segment matches its mappings"));
            continue;
        };
        return Ok(RubyBinary { path, image, bias });
    }
    let reason = match (tried.is_empty(), exe) {
        (false, _) => format!("no Ruby VM found in {}", tried.join("; ")),
        (true, Some(exe)) => format!("neither {exe} nor a mapped libruby contains the Ruby VM"),
        (true, None) => "no libruby is mapped and the executable is unknown".into(),
    };
    Err(Error::NotRuby {
        pid: view.pid(),
        reason,
    })
}

/// Opens a mapped file through the target's root, so files inside a
/// container resolve, or through `map_files` when it was deleted.
fn open_mapped_file(pid: i32, path: &str, own: &[&Mapping]) -> Result<ElfImage, String> {
    let through_root = PathBuf::from(format!("/proc/{pid}/root{path}"));
    let deleted = own.iter().any(|m| m.deleted);
    if !deleted {
        if let Ok(image) = ElfImage::open(&through_root) {
            return Ok(image);
        }
    }
    let first = own.iter().min_by_key(|m| m.offset).ok_or("not mapped")?;
    let mapped = PathBuf::from(format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        first.start, first.end
    ));
    ElfImage::open(&mapped).or_else(|error| ElfImage::open(&through_root).map_err(|_| error))
}

/// The kernel's view of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// The state letter of `/proc/PID/task/TID/stat`: R, S, D, T, Z...
    pub state: u8,
}

impl TaskState {
    pub fn on_cpu(self) -> bool {
        self.state == b'R'
    }
}

/// Reads the scheduling state of one thread, or `None` once it is gone.
pub fn task_state(pid: i32, tid: i32) -> Option<TaskState> {
    let text = std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_stat_state(&text).map(|state| TaskState { state })
}

/// Extracts the state letter from a `stat` line. The command name is in
/// parentheses and may itself contain `)`, so the state follows the last
/// `)`.
fn parse_stat_state(text: &[u8]) -> Option<u8> {
    let close = text.iter().rposition(|&b| b == b')')?;
    text.get(close + 2).copied()
}

/// Lists the thread ids of a process.
pub fn task_ids(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_after_last_paren() {
        assert_eq!(parse_stat_state(b"12 (ruby) S 1 12"), Some(b'S'));
        assert_eq!(parse_stat_state(b"12 (a) b) R 1 12"), Some(b'R'));
        assert_eq!(parse_stat_state(b"garbage"), None);
    }

    #[test]
    fn own_thread_is_running() {
        let pid = std::process::id() as i32;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        assert!(task_ids(pid).contains(&tid));
        // The thread reading its own stat is on a CPU at that moment.
        assert!(task_state(pid, tid).unwrap().on_cpu());
    }

    #[test]
    fn missing_process_is_reported() {
        assert!(matches!(
            read_maps(i32::MAX),
            Err(Error::NoSuchProcess { .. })
        ));
    }
}
