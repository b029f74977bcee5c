//! Samples every test interpreter that `scripts/test-rubies.sh` provides:
//! names, paths, lines, C function names and threads, on each Ruby version
//! and build kind, and with YJIT where the build has it.
//!
//! The manifest is `$RBPROF_RUBIES/manifest.json` (default
//! `~/.cache/rbprof/rubies`). Without it the test is skipped, unless
//! `RBPROF_REQUIRE_RUBIES=1` makes a missing manifest a failure.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rbprof_core::{Batch, FrameKind, Function, Sampler, SamplerOptions};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Interpreter {
    name: String,
    version: String,
    /// A script that sets the environment and execs the interpreter.
    wrapper: String,
    #[serde(default)]
    yjit: bool,
}

fn manifest() -> Option<Vec<Interpreter>> {
    let folder = std::env::var("RBPROF_RUBIES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/rbprof/rubies")
        });
    let path = folder.join("manifest.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("the manifest parses")),
        Err(error) => {
            let required = std::env::var("RBPROF_REQUIRE_RUBIES").as_deref() == Ok("1");
            assert!(
                !required,
                "{}: {error}; run scripts/test-rubies.sh",
                path.display()
            );
            eprintln!(
                "skipping: {}: {error}; run scripts/test-rubies.sh",
                path.display()
            );
            None
        }
    }
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workload(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/workloads")
        .join(name)
}

fn start(ruby: &Interpreter, extra: &[&str], script: &str) -> Guard {
    let mut child = Command::new(&ruby.wrapper)
        .args(extra)
        .arg(workload(script))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", ruby.wrapper));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{}: {line:?}", ruby.name);
    Guard(child)
}

struct Recording {
    functions: HashMap<u32, Function>,
    threads: HashMap<u32, Option<String>>,
    batches: Vec<Batch>,
}

fn record(pid: u32, idle: bool, seconds: f64) -> Recording {
    let mut options = SamplerOptions::new(pid as i32);
    options.idle = idle;
    let sampler = Sampler::start(options).expect("the sampler starts");
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let batch = sampler.stop();
    let mut recording = Recording {
        functions: HashMap::new(),
        threads: HashMap::new(),
        batches: Vec::new(),
    };
    for (id, function) in &batch.functions {
        recording.functions.insert(*id, function.clone());
    }
    for (id, thread) in &batch.threads {
        assert!(thread.tid > 0, "thread {thread:?} has no kernel id");
        recording.threads.insert(*id, thread.name.clone());
    }
    recording.batches.push(batch);
    recording
}

fn check_threads(ruby: &Interpreter, extra: &[&str]) {
    let label = format!("{} {}", ruby.name, extra.join(" "));
    let guard = start(ruby, extra, "threads.rb");
    let recording = record(guard.0.id(), true, 1.0);
    let names: HashSet<_> = recording.threads.values().flatten().cloned().collect();
    for expected in ["left", "right", "sleeper-1", "sleeper-2"] {
        assert!(names.contains(expected), "{label}: threads {names:?}");
    }

    let mut sort_calls = 0;
    let mut c_frames = 0;
    let mut unnamed_c_frames = 0;
    for sample in recording.batches.iter().flat_map(|b| &b.samples) {
        let frames: Vec<&Function> = sample
            .frames
            .iter()
            .map(|f| &recording.functions[&f.function])
            .collect();
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        for function in &frames {
            if function.kind == FrameKind::CFunc {
                c_frames += 1;
                if function.name == "<c function>" {
                    unnamed_c_frames += 1;
                }
            }
        }
        match recording.threads[&sample.thread].as_deref() {
            Some("left") => assert!(names.contains(&"Object#burn_left"), "{label}: {names:?}"),
            Some("right") => {
                assert!(names.contains(&"Object#burn_right"), "{label}: {names:?}");
                if names.last() == Some(&"Array#sort") {
                    sort_calls += 1;
                    let path = &frames.last().unwrap().path;
                    assert!(path.ends_with("threads.rb"), "{label}: {path}");
                }
            }
            Some("sleeper-1" | "sleeper-2") => {
                assert!(names.contains(&"Object#nap"), "{label}: {names:?}")
            }
            // The main thread, or a new thread before it has set its name.
            _ => assert!(
                matches!(names.first(), Some(&"<main>" | &"block in <main>")),
                "{label}: {names:?}"
            ),
        }
    }
    assert!(sort_calls > 0, "{label}: Array#sort never seen");
    assert!(c_frames > 0, "{label}");
    // A frame torn by the running target may stay unnamed now and then.
    assert!(
        unnamed_c_frames * 100 <= c_frames * 3,
        "{label}: {unnamed_c_frames} of {c_frames} C frames unnamed"
    );
}

fn check_lines(ruby: &Interpreter, extra: &[&str]) {
    let label = format!("{} {}", ruby.name, extra.join(" "));
    let guard = start(ruby, extra, "known_split.rb");
    let recording = record(guard.0.id(), false, 1.0);
    let mut alpha_lines = Vec::new();
    let mut spin_lines = Vec::new();
    for sample in recording.batches.iter().flat_map(|b| &b.samples) {
        let leaf = sample.frames.len().saturating_sub(1);
        for (depth, frame) in sample.frames.iter().enumerate() {
            match recording.functions[&frame.function].name.as_str() {
                // As a leaf, alpha may be on its `end` (line 12), between
                // the return of spin_until and its own.
                "Object#alpha" if depth < leaf => alpha_lines.push(frame.line),
                "Object#spin_until" => spin_lines.push(frame.line),
                _ => {}
            }
        }
    }
    assert!(!alpha_lines.is_empty(), "{label}: alpha never seen");
    // As a caller, alpha is on line 11, where it calls spin_until or
    // clock_gettime; spin_until loops on line 6.
    assert!(
        alpha_lines.iter().all(|&l| l == 11),
        "{label}: {alpha_lines:?}"
    );
    let in_loop = spin_lines.iter().filter(|&&l| l == 6).count();
    assert!(
        in_loop * 10 >= spin_lines.len() * 9,
        "{label}: {spin_lines:?}"
    );
}

fn check_gc(ruby: &Interpreter) {
    let guard = start(ruby, &[], "alloc.rb");
    let recording = record(guard.0.id(), false, 1.0);
    let samples: Vec<_> = recording.batches.iter().flat_map(|b| &b.samples).collect();
    let in_gc = samples
        .iter()
        .filter(|s| {
            let leaf = &recording.functions[&s.frames.last().unwrap().function];
            leaf.kind == FrameKind::Synthetic && leaf.name == "(garbage collection)"
        })
        .count();
    assert!(
        in_gc > 0,
        "{}: no GC frame in {} samples",
        ruby.name,
        samples.len()
    );
}

#[test]
fn every_test_ruby_reads_correctly() {
    let Some(interpreters) = manifest() else {
        return;
    };
    assert!(!interpreters.is_empty());
    for ruby in &interpreters {
        eprintln!("checking {} (Ruby {})", ruby.name, ruby.version);
        check_threads(ruby, &[]);
        check_lines(ruby, &[]);
        check_gc(ruby);
        if ruby.yjit {
            check_threads(ruby, &["--yjit"]);
            check_lines(ruby, &["--yjit"]);
        }
    }
}
