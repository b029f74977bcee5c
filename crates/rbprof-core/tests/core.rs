//! Reads stacks out of core files that `gcore` writes of real Ruby
//! processes, compares them with live snapshots, and checks the errors for
//! damaged files and missing binaries.
//!
//! The interpreter is `$RBPROF_TEST_RUBY`, else `/usr/bin/ruby`. Tests
//! that need it or `gcore` are skipped with a message when either is
//! missing. Each core of the threads workload takes about 80 MB under the
//! temporary directory while its test runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rbprof_core::{
    take_snapshot, Error, FrameKind, Snapshot, SnapshotOptions, ThreadSnapshot, ThreadState,
};

/// A Ruby process that is killed and reaped when the test ends.
struct RubyGuard {
    child: Child,
}

impl Drop for RubyGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the temporary directory, removed with its contents
/// when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("rbprof-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one gcore at a time: each stops its target and writes tens of MB.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runs(command: &str, arg: &str) -> bool {
    Command::new(command)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Tells whether an executable of that name is on the PATH. gcore has no
/// option that exits with success, so it is not run to find out.
fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
}

/// Returns the Ruby interpreter, or `None` (with a message) when it or
/// `gcore` is missing.
fn tools() -> Option<String> {
    let ruby = std::env::var("RBPROF_TEST_RUBY").unwrap_or_else(|_| "/usr/bin/ruby".into());
    if !runs(&ruby, "-v") {
        eprintln!("skipping: no Ruby interpreter ({ruby})");
        return None;
    }
    if !on_path("gcore") {
        eprintln!("skipping: gcore (from gdb) is not installed");
        return None;
    }
    Some(ruby)
}

/// Starts the threads workload and waits until its threads have named
/// themselves and entered their loops.
fn start_threads(ruby: &str, env: &[(&str, &str)]) -> RubyGuard {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/workloads/threads.rb");
    // One malloc arena keeps the core near 80 MB. Each extra arena adds
    // 64 MB of reserved address space that gdb writes out.
    let mut child = Command::new(ruby)
        .arg(script)
        .env("MALLOC_ARENA_MAX", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ruby starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "unexpected first line {line:?}");
    std::thread::sleep(Duration::from_millis(300));
    RubyGuard { child }
}

/// Writes a core of `pid` into `dir` with gcore and returns its path.
fn gcore(pid: u32, dir: &Path) -> PathBuf {
    let prefix = dir.join("core");
    let output = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .expect("gcore runs");
    assert!(
        output.status.success(),
        "gcore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir.join(format!("core.{pid}"))
}

fn snapshot_core(core: &Path, binary: Option<&Path>) -> rbprof_core::Result<Snapshot> {
    take_snapshot(&SnapshotOptions::core(core, binary.map(Path::to_path_buf)))
}

fn thread<'a>(snapshot: &'a Snapshot, name: &str) -> &'a ThreadSnapshot {
    snapshot
        .threads
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no thread {name} in {snapshot:#?}"))
}

fn frame_names(thread: &ThreadSnapshot) -> Vec<&str> {
    thread.frames.iter().map(|f| f.name.as_str()).collect()
}

/// Frames as `name:line`, the first `count` only.
fn outer_frames(thread: &ThreadSnapshot, count: usize) -> Vec<String> {
    thread
        .frames
        .iter()
        .take(count)
        .map(|f| format!("{}:{}", f.name, f.line))
        .collect()
}

/// Checks the workload's threads and their methods in a snapshot.
fn check_threads(snapshot: &Snapshot) {
    assert_eq!(snapshot.threads.len(), 5, "{snapshot:#?}");
    for thread in &snapshot.threads {
        assert!(thread.error.is_none(), "{thread:#?}");
        assert!(thread.tid > 0, "{thread:#?}");
        let outermost = thread.frames.first().expect("a frame");
        assert!(outermost.path.ends_with("threads.rb"), "{outermost:?}");
    }
    let left = frame_names(thread(snapshot, "left"));
    assert_eq!(
        left[..3],
        ["block in <main>", "Object#burn_left", "Kernel#loop"]
    );
    let right = frame_names(thread(snapshot, "right"));
    assert_eq!(
        right[..3],
        ["block in <main>", "Object#burn_right", "Kernel#loop"]
    );
    for name in ["sleeper-1", "sleeper-2"] {
        let sleeper = thread(snapshot, name);
        assert_eq!(
            frame_names(sleeper),
            [
                "block in <main>",
                "Object#nap",
                "Kernel#loop",
                "block in Object#nap",
                "Kernel#sleep"
            ]
        );
        assert_eq!(sleeper.frames[1].kind, FrameKind::Ruby);
        assert_eq!(sleeper.frames[4].kind, FrameKind::CFunc);
        // nap's `loop { sleep 0.5 }` is line 11.
        assert_eq!(sleeper.frames[1].line, 11);
    }
}

#[test]
fn core_matches_live_snapshot() {
    let _serial = serial();
    let Some(ruby) = tools() else { return };
    let guard = start_threads(&ruby, &[]);
    let pid = guard.child.id();
    let dir = TempDir::new("core-live");
    let core = gcore(pid, &dir.0);
    let live = take_snapshot(&SnapshotOptions::process(pid as i32)).expect("live snapshot");
    let from_core = snapshot_core(&core, None).expect("core snapshot");

    assert_eq!(from_core.pid, pid as i32);
    assert_eq!(from_core.ruby_version, live.ruby_version);
    check_threads(&live);
    check_threads(&from_core);

    // The core has no scheduling states, but the live process has them.
    assert!(from_core.threads.iter().all(|t| t.state.is_none()));
    for name in ["sleeper-1", "sleeper-2"] {
        assert_eq!(thread(&live, name).state, Some(ThreadState::Blocked));
    }
    let busy = ["left", "right"].iter().any(|name| {
        matches!(
            thread(&live, name).state,
            Some(ThreadState::Running | ThreadState::WaitingForGvl)
        )
    });
    assert!(busy, "{live:#?}");

    // The same threads, and the same stacks except where the busy threads
    // moved on in their loops.
    for (core_thread, live_thread) in from_core.threads.iter().zip(&live.threads) {
        assert_eq!(core_thread.tid, live_thread.tid);
        assert_eq!(core_thread.name, live_thread.name);
        let busy = matches!(core_thread.name.as_deref(), Some("left" | "right"));
        let count = if busy { 4 } else { usize::MAX };
        assert_eq!(
            outer_frames(core_thread, count),
            outer_frames(live_thread, count)
        );
    }
    drop(guard);

    // A core cut short anywhere is rejected with the reason, not read in
    // part.
    let full = std::fs::metadata(&core).unwrap().len();
    for len in [full - 1, 1 << 20, 100, 10] {
        let file = std::fs::OpenOptions::new().write(true).open(&core).unwrap();
        file.set_len(len).unwrap();
        drop(file);
        match snapshot_core(&core, None) {
            Err(error @ Error::InvalidCore { .. }) => {
                let message = error.to_string();
                assert!(message.contains("truncated"), "{len} bytes: {message}");
                assert!(message.contains(core.to_str().unwrap()), "{message}");
                assert_eq!(error.code(), "ERR_INVALID_CORE");
                assert!(error.hint().is_some());
            }
            other => panic!("{len} bytes: {other:?}"),
        }
    }
}

/// Asks Ruby for the file names of its shared library: the file itself
/// and the names that link to it. Empty for a static build.
fn libruby_names(ruby: &str) -> Vec<String> {
    let output = Command::new(ruby)
        .args([
            "-e",
            "c = RbConfig::CONFIG; print c['ENABLE_SHARED'] == 'yes' ? \
             [c['LIBRUBY_SO'], c['LIBRUBY_ALIASES']].join(' ') : ''",
        ])
        .output()
        .expect("ruby runs");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn moved_libruby_is_read_from_binary() {
    let _serial = serial();
    let Some(ruby) = tools() else { return };
    let names = libruby_names(&ruby);
    if names.is_empty() {
        eprintln!("skipping: {ruby} is linked statically, without libruby");
        return;
    }

    // Load a copy of libruby from a directory of its own, then move the
    // copy away after the core is written: the path recorded in the core
    // no longer exists, as on another machine.
    let dir = TempDir::new("core-moved");
    let libs = dir.0.join("lib");
    std::fs::create_dir(&libs).unwrap();
    let probe = start_threads(&ruby, &[]);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", probe.child.id())).unwrap();
    drop(probe);
    let system = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("/libruby"))
        .expect("libruby is mapped")
        .to_string();
    for name in &names {
        std::fs::copy(&system, libs.join(name)).unwrap();
    }
    let guard = start_threads(&ruby, &[("LD_LIBRARY_PATH", libs.to_str().unwrap())]);
    let core = gcore(guard.child.id(), &dir.0);
    drop(guard);
    let moved = dir.0.join("moved");
    std::fs::rename(&libs, &moved).unwrap();

    let error = snapshot_core(&core, None).expect_err("libruby is missing");
    assert_eq!(error.code(), "ERR_NOT_RUBY");
    assert!(matches!(error, Error::CoreNotRuby { .. }), "{error:?}");
    assert!(
        error.to_string().contains(libs.to_str().unwrap()),
        "{error}"
    );
    assert!(error.hint().unwrap().contains("--binary"));

    let binary = moved.join(&names[0]);
    let snapshot = snapshot_core(&core, Some(&binary)).expect("snapshot with --binary");
    check_threads(&snapshot);

    // Another ELF file under libruby's name is refused for its build ID
    // rather than read with wrong symbols.
    let wrong = dir.0.join(&names[0]);
    std::fs::copy(std::env::current_exe().unwrap(), &wrong).unwrap();
    let error = snapshot_core(&core, Some(&wrong)).expect_err("wrong binary");
    assert!(
        matches!(error, Error::CoreBinaryMismatch { .. }),
        "{error:?}"
    );
    assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
    let message = error.to_string();
    assert!(
        message.starts_with("--binary does not match core file"),
        "{message}"
    );
    assert!(message.contains("build ID"), "{message}");
    assert!(!error.hint().unwrap().contains("pass that exact file"));
}

#[test]
fn garbage_files_are_not_cores() {
    let dir = TempDir::new("core-garbage");
    let text = dir.0.join("notes.txt");
    std::fs::write(&text, "this is not a core file\n").unwrap();
    let random = dir.0.join("random");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let empty = dir.0.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let executable = std::env::current_exe().unwrap();
    let missing = dir.0.join("missing");

    let cases: [(&Path, &str); 5] = [
        (&text, "not an ELF file"),
        (&random, "not an ELF file"),
        (&empty, "empty"),
        (&executable, "not a core file"),
        (&missing, "does not exist"),
    ];
    for (path, reason) in cases {
        let error = snapshot_core(path, None).expect_err("not a core");
        assert_eq!(error.code(), "ERR_INVALID_CORE", "{error}");
        let message = error.to_string();
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert!(message.contains(reason), "{message}");
    }
}
