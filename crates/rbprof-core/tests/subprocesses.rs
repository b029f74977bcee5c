//! Follows the Ruby processes that descend from a target: workers forked
//! at the start, one forked while the recording runs, and a Ruby started
//! through a shell.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rbprof_core::{Batch, Function, ProcessEventKind, Sampler, SamplerOptions};

mod common;
use common::{ruby, workload};

struct Tree {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        // The workload kills its children on TERM.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Tree {
    /// Reads the next `KIND PID` line.
    fn expect(&mut self, kind: &str) -> i32 {
        let line = self.lines.next().expect("a line").expect("readable");
        let (word, pid) = line.split_once(' ').expect("KIND PID");
        assert_eq!(word, kind, "unexpected line {line:?}");
        pid.parse().unwrap()
    }
}

fn start(ruby: &str, args: &[&str]) -> Tree {
    let script = workload("forking.rb");
    let mut child = Command::new(ruby)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ruby starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    Tree { child, lines }
}

/// Collects batches until `until` holds for what was collected or the
/// time is up.
struct Collected {
    functions: Vec<Function>,
    batches: Vec<Batch>,
}

impl Collected {
    fn add(&mut self, batch: Batch) {
        for (id, function) in &batch.functions {
            assert_eq!(*id as usize, self.functions.len(), "ids are dense");
            self.functions.push(function.clone());
        }
        self.batches.push(batch);
    }

    /// Thread-samples per pid whose stack contains `name`.
    fn samples_in(&self, name: &str) -> HashMap<i32, usize> {
        let mut counts = HashMap::new();
        for sample in self.batches.iter().flat_map(|b| &b.samples) {
            let hit = sample
                .frames
                .iter()
                .any(|f| self.functions[f.function as usize].name == name);
            if hit {
                *counts.entry(sample.pid).or_default() += 1;
            }
        }
        counts
    }

    fn attached(&self) -> Vec<(i32, i32)> {
        self.batches
            .iter()
            .flat_map(|b| &b.processes)
            .filter(|e| matches!(e.kind, ProcessEventKind::Attached { .. }))
            .map(|e| (e.pid, e.parent))
            .collect()
    }

    fn exited(&self) -> Vec<i32> {
        self.batches
            .iter()
            .flat_map(|b| &b.processes)
            .filter(|e| e.kind == ProcessEventKind::Exited)
            .map(|e| e.pid)
            .collect()
    }
}

fn collect_while(
    sampler: &Sampler,
    collected: &mut Collected,
    mut until: impl FnMut(&Collected) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !until(collected) {
        if let Some(batch) = sampler.next_batch(Duration::from_millis(100)) {
            collected.add(batch);
        }
    }
}

#[test]
fn forked_workers_and_a_late_one_are_sampled() {
    let Some(ruby) = ruby() else { return };
    let trigger = std::env::temp_dir().join(format!("rbprof-late-{}", std::process::id()));
    let _ = std::fs::remove_file(&trigger);
    let mut tree = start(&ruby, &["2", trigger.to_str().unwrap()]);
    let root = tree.expect("ready");
    let workers = [tree.expect("worker"), tree.expect("worker")];

    let mut options = SamplerOptions::new(root);
    options.rate_hz = 199.0;
    options.subprocesses = true;
    let sampler = Sampler::start(options).expect("sampler starts");
    let mut collected = Collected {
        functions: Vec::new(),
        batches: Vec::new(),
    };
    collect_while(&sampler, &mut collected, |c| {
        let counts = c.samples_in("Object#worker_loop");
        workers
            .iter()
            .all(|w| counts.get(w).copied().unwrap_or(0) >= 20)
    });
    let counts = collected.samples_in("Object#worker_loop");
    for worker in workers {
        assert!(
            counts.get(&worker).copied().unwrap_or(0) >= 20,
            "worker {worker} has too few samples: {counts:?}"
        );
    }
    // The parent sleeps in Process.wait, so on-CPU sampling shows only
    // the workers; all three processes are attached.
    let attached = collected.attached();
    assert!(attached.contains(&(root, 0)), "{attached:?}");
    for worker in workers {
        assert!(attached.contains(&(worker, root)), "{attached:?}");
    }

    // A worker forked while the recording runs.
    std::fs::write(&trigger, b"").unwrap();
    let late = tree.expect("late");
    collect_while(&sampler, &mut collected, |c| {
        c.samples_in("Object#late_worker_loop")
            .get(&late)
            .copied()
            .unwrap_or(0)
            >= 20
    });
    let late_counts = collected.samples_in("Object#late_worker_loop");
    assert!(
        late_counts.get(&late).copied().unwrap_or(0) >= 20,
        "late worker {late}: {late_counts:?}"
    );
    // Its samples never name another process's methods.
    assert_eq!(collected.samples_in("Object#worker_loop").get(&late), None);
    let _ = std::fs::remove_file(&trigger);

    // A worker that dies is reported and the recording goes on.
    unsafe_kill(workers[0]);
    collect_while(&sampler, &mut collected, |c| {
        c.exited().contains(&workers[0])
    });
    assert!(collected.exited().contains(&workers[0]));
    let last = sampler.stop();
    assert_eq!(last.end, Some(rbprof_core::EndReason::Stopped));
}

#[test]
fn ruby_started_through_a_shell_is_sampled() {
    let Some(ruby) = ruby() else { return };
    let trigger = std::env::temp_dir().join(format!("rbprof-spawn-{}", std::process::id()));
    std::fs::write(&trigger, b"").unwrap();
    let mut tree = start(&ruby, &["0", trigger.to_str().unwrap(), "spawn"]);
    let root = tree.expect("ready");
    let _late = tree.expect("late");
    let spawned = tree.expect("spawned");

    let mut options = SamplerOptions::new(root);
    options.subprocesses = true;
    let sampler = Sampler::start(options).expect("sampler starts");
    let mut collected = Collected {
        functions: Vec::new(),
        batches: Vec::new(),
    };
    collect_while(&sampler, &mut collected, |c| {
        c.samples_in("Object#spawned_loop")
            .get(&spawned)
            .copied()
            .unwrap_or(0)
            >= 10
    });
    let _ = std::fs::remove_file(&trigger);
    let counts = collected.samples_in("Object#spawned_loop");
    assert!(
        counts.get(&spawned).copied().unwrap_or(0) >= 10,
        "{counts:?}"
    );
    assert!(collected.attached().iter().any(|&(pid, _)| pid == spawned));
}

#[test]
fn without_the_option_children_are_not_sampled() {
    let Some(ruby) = ruby() else { return };
    let mut tree = start(&ruby, &["1"]);
    let root = tree.expect("ready");
    let worker = tree.expect("worker");
    let sampler = Sampler::start(SamplerOptions::new(root)).expect("sampler starts");
    std::thread::sleep(Duration::from_millis(800));
    let mut collected = Collected {
        functions: Vec::new(),
        batches: Vec::new(),
    };
    while let Some(batch) = sampler.next_batch(Duration::ZERO) {
        let empty = batch.samples.is_empty() && batch.processes.is_empty();
        collected.add(batch);
        if empty {
            break;
        }
    }
    collected.add(sampler.stop());
    assert_eq!(collected.attached(), vec![(root, 0)]);
    assert!(collected
        .batches
        .iter()
        .flat_map(|b| &b.samples)
        .all(|s| s.pid == root));
    assert!(process_exists(worker));
}

fn process_exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn unsafe_kill(pid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}
