//! Helpers shared by the test binaries that start real Ruby processes.
//!
//! The interpreter is `$RBPROF_TEST_RUBY`, else `ruby` on the PATH; tests
//! skip with a message when neither exists.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A Ruby process that is killed and reaped when the test ends, pass or
/// fail.
pub struct RubyGuard {
    pub child: Child,
}

impl RubyGuard {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for RubyGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serialises the tests of one binary: workloads that measure time shares
/// are only right while they have a CPU to themselves, and the machine may
/// have two.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Returns the test interpreter, or `None` with a message when it is
/// missing.
pub fn ruby() -> Option<String> {
    let ruby = std::env::var("RBPROF_TEST_RUBY").unwrap_or_else(|_| "ruby".into());
    let found = Command::new(&ruby)
        .arg("-v")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipping: no Ruby interpreter ({ruby})");
        return None;
    }
    Some(ruby)
}

/// Returns the path of a script in `test/workloads`.
pub fn workload(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/workloads")
        .join(name)
}
