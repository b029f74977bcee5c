//! Samples real Ruby processes started by the tests.
//!
//! The interpreter is `$RBPROF_TEST_RUBY`, else `ruby` on the PATH; the
//! tests are skipped with a message when neither exists.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rbprof_core::{Batch, Error, FrameKind, Function, Sampler, SamplerOptions};

mod common;
use common::{ruby, serial, workload, RubyGuard};

/// Starts a workload and waits for its `ready PID` line.
fn start(ruby: &str, script: &str) -> RubyGuard {
    let mut child = Command::new(ruby)
        .arg(workload(script))
        .stdout(Stdio::piped())
        .spawn()
        .expect("ruby starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "unexpected first line {line:?}");
    RubyGuard { child }
}

/// Everything a short recording produced, with the function table.
struct Recording {
    functions: Vec<Function>,
    batches: Vec<Batch>,
}

impl Recording {
    fn function(&self, id: u32) -> &Function {
        &self.functions[id as usize]
    }

    fn samples(&self) -> impl Iterator<Item = &rbprof_core::Sample> {
        self.batches.iter().flat_map(|b| b.samples.iter())
    }
}

fn record(options: SamplerOptions, seconds: f64) -> Recording {
    let sampler = Sampler::start(options).expect("sampler starts");
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let mut batches = Vec::new();
    while let Some(batch) = sampler.next_batch(Duration::ZERO) {
        let empty = batch.samples.is_empty();
        batches.push(batch);
        if empty {
            break;
        }
    }
    batches.push(sampler.stop());
    let mut functions = Vec::new();
    for batch in &batches {
        for (id, function) in &batch.functions {
            assert_eq!(*id as usize, functions.len(), "ids are dense and in order");
            functions.push(function.clone());
        }
    }
    Recording { functions, batches }
}

#[test]
fn known_split_names_and_lines() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "known_split.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 1.5);
    let samples: Vec<_> = recording.samples().collect();
    assert!(samples.len() > 50, "only {} samples", samples.len());

    let mut alpha = 0;
    for sample in &samples {
        let names: Vec<&str> = sample
            .frames
            .iter()
            .map(|f| recording.function(f.function).name.as_str())
            .collect();
        assert_eq!(names.first(), Some(&"<main>"), "stack {names:?}");
        if let Some(at) = names.iter().position(|n| *n == "Object#alpha") {
            alpha += 1;
            assert_eq!(names[at - 1], "Object#schedule");
            // alpha calls spin_until on line 11.
            assert_eq!(sample.frames[at].line, 11);
            let path = &recording.function(sample.frames[at].function).path;
            assert!(path.ends_with("known_split.rb"), "{path}");
        }
    }
    assert!(
        alpha > samples.len() / 3,
        "alpha in {alpha} of {}",
        samples.len()
    );
}

#[test]
fn spin_loop_leaf_line_and_cfunc() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "known_split.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 1.0);
    let mut leaf_lines = Vec::new();
    let mut clock_calls = 0;
    for sample in recording.samples() {
        for pair in sample.frames.windows(2) {
            if recording.function(pair[0].function).name == "Object#spin_until" {
                leaf_lines.push(pair[0].line);
                let callee = recording.function(pair[1].function);
                if callee.kind == FrameKind::CFunc {
                    assert_eq!(callee.name, "Process.clock_gettime");
                    clock_calls += 1;
                }
            }
        }
    }
    assert!(!leaf_lines.is_empty());
    // The loop `x += 1 while clock_gettime(...) < deadline` is line 6; the
    // method's other lines run once per call and are rarely sampled.
    let in_loop = leaf_lines.iter().filter(|&&l| l == 6).count();
    assert!(in_loop * 10 >= leaf_lines.len() * 9, "{leaf_lines:?}");
    assert!(
        leaf_lines.iter().all(|&l| (5..=7).contains(&l)),
        "{leaf_lines:?}"
    );
    assert!(clock_calls > 0);
}

#[test]
fn threads_carry_names() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "threads.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 1.5);
    let mut names = std::collections::HashMap::new();
    for batch in &recording.batches {
        for (id, thread) in &batch.threads {
            names.insert(*id, thread.name.clone());
            assert!(thread.tid > 0);
        }
    }
    let mut seen_left = false;
    let mut seen_right = false;
    let mut others = 0;
    let mut total = 0;
    for sample in recording.samples() {
        total += 1;
        let leafish: Vec<&str> = sample
            .frames
            .iter()
            .map(|f| recording.function(f.function).name.as_str())
            .collect();
        match names[&sample.thread].as_deref() {
            Some("left") => {
                seen_left = true;
                assert!(leafish.contains(&"Object#burn_left"), "{leafish:?}");
            }
            Some("right") => {
                seen_right = true;
                assert!(leafish.contains(&"Object#burn_right"), "{leafish:?}");
            }
            // A sleeper is on a CPU for a moment each time it wakes, and the
            // main thread while it prints its ready line.
            _ => others += 1,
        }
    }
    assert!(seen_left);
    assert!(seen_right);
    assert!(
        others * 10 < total,
        "{others} of {total} samples from idle threads"
    );
}

#[test]
fn idle_threads_with_idle_option() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "threads.rb");
    let mut options = SamplerOptions::new(guard.child.id() as i32);
    options.idle = true;
    let recording = record(options, 0.5);
    let mut names = std::collections::HashSet::new();
    for batch in &recording.batches {
        for (_, thread) in &batch.threads {
            names.insert(thread.name.clone().unwrap_or_default());
        }
    }
    for expected in ["left", "right", "sleeper-1", "sleeper-2"] {
        assert!(names.contains(expected), "{names:?}");
    }
}

#[test]
fn threads_option_selects_by_name_or_id() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "threads.rb");
    let pid = guard.child.id() as i32;
    let mut options = SamplerOptions::new(pid);
    options.idle = true;
    // The main thread's kernel id is the pid.
    options.threads = vec!["left".into(), pid.to_string()];
    let recording = record(options, 0.5);
    let mut names = std::collections::HashSet::new();
    for batch in &recording.batches {
        for (_, thread) in &batch.threads {
            names.insert(thread.name.clone().unwrap_or_default());
        }
    }
    assert!(names.contains("left"), "{names:?}");
    assert!(names.contains(""), "main thread missing: {names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn deep_stack_is_read_whole() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "deep.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 0.5);
    let deepest = recording
        .samples()
        .map(|s| s.frames.len())
        .max()
        .unwrap_or(0);
    assert!(deepest > 3000, "deepest stack {deepest}");
    let failed: u64 = recording.batches.last().unwrap().stats.failed;
    assert_eq!(failed, 0);
}

#[test]
fn exit_ends_the_recording() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "known_split.rb");
    let sampler = Sampler::start(SamplerOptions::new(guard.child.id() as i32)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(guard);
    let mut end = None;
    for _ in 0..50 {
        match sampler.next_batch(Duration::from_millis(100)) {
            Some(batch) if batch.end.is_some() => {
                end = batch.end;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(end, Some(rbprof_core::EndReason::ProcessExited));
}

#[test]
fn errors_for_bad_targets() {
    let _serial = serial();
    assert!(matches!(
        Sampler::start(SamplerOptions::new(i32::MAX)),
        Err(Error::NoSuchProcess { .. })
    ));
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let result = Sampler::start(SamplerOptions::new(sleeper.id() as i32));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(
        matches!(result, Err(Error::NotRuby { .. })),
        "{:?}",
        result.err()
    );
}

#[test]
fn unknown_forced_version_is_rejected() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "known_split.rb");
    let mut options = SamplerOptions::new(guard.child.id() as i32);
    options.force_version = Some("1.0.0".into());
    match Sampler::start(options) {
        Err(Error::UnsupportedVersion { version, supported }) => {
            assert_eq!(version, "1.0.0");
            assert!(supported.contains("3.1"), "{supported}");
        }
        other => panic!("expected an unsupported version, got {:?}", other.err()),
    }
}

/// Copies the interpreter and the libraries `ldd` lists into `root`,
/// libraries under `opt/lib`.
fn build_root(ruby: &str, root: &std::path::Path) -> Option<PathBuf> {
    let binary = std::fs::canonicalize(
        String::from_utf8(Command::new("which").arg(ruby).output().ok()?.stdout)
            .ok()?
            .trim(),
    )
    .ok()?;
    let ldd = Command::new("ldd").arg(&binary).output().ok()?;
    let lib_dir = root.join("opt/lib");
    std::fs::create_dir_all(&lib_dir).ok()?;
    std::fs::create_dir_all(root.join("lib64")).ok()?;
    std::fs::create_dir_all(root.join("opt/bin")).ok()?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|word| word.starts_with('/'))
            .map(PathBuf::from);
        let Some(path) = path else { continue };
        let name = path.file_name()?;
        if line.trim_start().starts_with("/lib64/") {
            std::fs::copy(&path, root.join("lib64").join(name)).ok()?;
        } else {
            std::fs::copy(&path, lib_dir.join(name)).ok()?;
        }
    }
    std::fs::copy(&binary, root.join("opt/bin/ruby")).ok()?;
    std::fs::copy(workload("known_split.rb"), root.join("known_split.rb")).ok()?;
    Some(root.join("opt/bin/ruby"))
}

/// The target runs in a mount namespace of its own, as in a container,
/// with libruby on a tmpfs that the host cannot see: rbprof must read it
/// through /proc/PID/root.
#[test]
fn target_in_a_mount_namespace() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: a mount namespace needs root");
        return;
    }
    let root = std::env::temp_dir().join(format!("rbprof-mntns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let binary = build_root(&ruby, &root).expect("the copy is made");
    let script = format!(
        "mount -t tmpfs rbprof-test /opt && mkdir /opt/lib && cp {libs}/* /opt/lib/ \\
         && LD_LIBRARY_PATH=/opt/lib exec {binary} --disable-gems {workload}",
        libs = root.join("opt/lib").display(),
        binary = binary.display(),
        workload = workload("known_split.rb").display(),
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let guard = RubyGuard { child };
    assert!(line.starts_with("ready"), "{line:?}");
    assert!(!std::path::Path::new("/opt/lib/libruby-3.1.so.3.1").exists());

    let sampler = Sampler::start(SamplerOptions::new(guard.child.id() as i32)).unwrap();
    assert!(
        sampler.target().ruby_binary.starts_with("/opt/lib/libruby"),
        "{}",
        sampler.target().ruby_binary
    );
    std::thread::sleep(Duration::from_millis(500));
    let batch = sampler.stop();
    drop(guard);
    let _ = std::fs::remove_dir_all(&root);
    assert!(!batch.samples.is_empty());
    assert!(batch
        .functions
        .iter()
        .any(|(_, f)| f.name == "Object#alpha"));
}

/// The library file is deleted while the target runs, as after a package
/// upgrade: rbprof must read it through /proc/PID/map_files.
#[test]
fn deleted_library_is_read() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: map_files needs root");
        return;
    }
    let root = std::env::temp_dir().join(format!("rbprof-deleted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let binary = build_root(&ruby, &root).expect("the copy is made");
    let mut child = Command::new(binary)
        .args(["--disable-gems"])
        .arg(workload("known_split.rb"))
        .env("LD_LIBRARY_PATH", root.join("opt/lib"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("the copy starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let guard = RubyGuard { child };
    std::fs::remove_dir_all(&root).unwrap();

    let sampler = Sampler::start(SamplerOptions::new(guard.child.id() as i32)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let batch = sampler.stop();
    assert!(!batch.samples.is_empty());
    assert!(batch
        .functions
        .iter()
        .any(|(_, f)| f.name == "Object#alpha"));
}

/// A layout of another version must fail loudly, never give stacks made
/// of unrelated memory.
#[test]
fn wrong_layout_is_rejected() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "known_split.rb");
    let pid = guard.child.id() as i32;
    let own = Sampler::start(SamplerOptions::new(pid)).unwrap();
    let own_version = own.target().layout_version.clone();
    drop(own);
    for layout in rbprof_core::ruby::layout::all() {
        if layout.from == own_version {
            continue;
        }
        let mut options = SamplerOptions::new(pid);
        options.force_version = Some(layout.from.clone());
        match Sampler::start(options) {
            Err(Error::VmUnreadable { reason, .. }) => {
                assert!(reason.contains(&layout.from), "{reason}");
            }
            Err(other) => panic!("layout {}: unexpected error {other}", layout.from),
            Ok(sampler) => {
                std::thread::sleep(Duration::from_millis(300));
                let batch = sampler.stop();
                let names: Vec<&str> = batch
                    .functions
                    .iter()
                    .map(|(_, f)| f.name.as_str())
                    .collect();
                panic!("layout {} read stacks: {names:?}", layout.from);
            }
        }
    }
}

/// A process attached while it is still a shell about to exec Ruby is
/// retried until the VM is up.
#[test]
fn attach_during_exec() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let script = format!(
        "sleep 0.3; exec {ruby} {}",
        workload("known_split.rb").display()
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let guard = RubyGuard { child };
    let sampler = Sampler::start(SamplerOptions::new(guard.child.id() as i32))
        .expect("the exec completes within the startup wait");
    std::thread::sleep(Duration::from_millis(300));
    let batch = sampler.stop();
    assert!(!batch.samples.is_empty());
}

/// An allocation-heavy loop spends a visible share of its samples in
/// garbage collection, marked by a synthetic leaf frame.
#[test]
fn garbage_collection_frame() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "alloc.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 1.5);
    let total = recording.samples().count();
    let in_gc = recording
        .samples()
        .filter(|s| {
            let leaf = recording.function(s.frames.last().unwrap().function);
            leaf.name == "(garbage collection)" && leaf.kind == FrameKind::Synthetic
        })
        .count();
    assert!(total > 50, "{total} samples");
    assert!(in_gc * 20 > total, "{in_gc} of {total} samples in GC");
    assert!(in_gc < total, "every sample in GC");
    // The collection happens inside the allocating method.
    let gc_stack = recording
        .samples()
        .find(|s| {
            recording.function(s.frames.last().unwrap().function).kind == FrameKind::Synthetic
        })
        .unwrap();
    let names: Vec<&str> = gc_stack
        .frames
        .iter()
        .map(|f| recording.function(f.function).name.as_str())
        .collect();
    assert!(names.contains(&"Object#churn"), "{names:?}");
}

/// A program that does not allocate (its floats are immediates) shows no
/// GC frame.
#[test]
fn no_gc_frame_without_allocation() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "known_split.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 0.5);
    let synthetic = recording
        .functions
        .iter()
        .filter(|f| f.kind == FrameKind::Synthetic)
        .count();
    assert_eq!(synthetic, 0);
}

/// Fast recursion tears stacks while they are read; a torn frame must be
/// dropped or read again, never named without its class.
#[test]
fn recursion_keeps_class_names() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "recursive.rb");
    let recording = record(SamplerOptions::new(guard.child.id() as i32), 1.5);
    let names: Vec<&str> = recording
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert!(names.contains(&"Fib#fib"), "{names:?}");
    assert!(names.contains(&"Fib2#fib"), "{names:?}");
    assert!(!names.contains(&"fib"), "{names:?}");
    assert!(!names.contains(&"<c function>"), "{names:?}");
    let samples = recording.samples().count();
    assert!(samples > 20, "{samples} samples");
}
