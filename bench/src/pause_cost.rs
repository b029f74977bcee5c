//! Measures what sampling with and without pausing costs a Ruby process,
//! and how long each pause stops it.
//!
//! ```text
//! cargo run --release -p rbprof-bench --bin pause-cost [-- RUBY [ROUNDS]]
//! ```
//!
//! 1. Slowdown: `bench/workloads/fixed_work.rb` runs a fixed amount of
//!    recursive method calls, alone and under the sampler at 99 Hz and
//!    999 Hz in each mode. The configurations take turns in each of ROUNDS
//!    rounds (5 by default), so a change in the machine's load spreads
//!    over all of them. The table gives the median run time of each
//!    configuration divided by the median without sampling, once with the
//!    worker thread alone and once with 19 more threads that sleep.
//! 2. Pause length: a loop on this thread pauses `bench/workloads/stack50.rb`
//!    at 999 Hz for 2 seconds, with 1 and with 20 spinning threads. While
//!    paused, it reads the stacks of the threads that were on a CPU, as a
//!    tick of the sampler does. It prints the median, 99th percentile and
//!    maximum length.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rbprof_core::process::ptrace::Tracer;
use rbprof_core::ruby::RubyProcess;
use rbprof_core::{Sampler, SamplerOptions, Stats, ThreadState};

const DEFAULT_ROUNDS: usize = 5;
/// Calls of `fib(20)` per run of the fixed work, about 0.8 s on the
/// machine of the record in bench/README.md.
const WORK_CALLS: usize = 1800;
/// Threads of the second slowdown table: the worker and 19 that sleep.
const SLEEPING_THREADS: usize = 19;
const PAUSE_RATE_HZ: f64 = 999.0;
const PAUSE_SECONDS: f64 = 2.0;

/// One way to run the work: alone, or sampled at a rate in a mode.
#[derive(Clone, Copy)]
struct Config {
    rate_hz: Option<f64>,
    pause: bool,
}

impl Config {
    fn label(&self) -> String {
        match self.rate_hz {
            None => "not sampled".into(),
            Some(rate) => {
                let mode = if self.pause { "pause" } else { "nonblocking" };
                format!("{rate} Hz {mode}")
            }
        }
    }
}

const CONFIGS: [Config; 5] = [
    Config {
        rate_hz: None,
        pause: false,
    },
    Config {
        rate_hz: Some(99.0),
        pause: false,
    },
    Config {
        rate_hz: Some(99.0),
        pause: true,
    },
    Config {
        rate_hz: Some(999.0),
        pause: false,
    },
    Config {
        rate_hz: Some(999.0),
        pause: true,
    },
];

/// The fixed-work process, which runs the work once per line on stdin.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn start(ruby: &str, sleeping_threads: usize) -> Worker {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/fixed_work.rb");
        let mut child = Command::new(ruby)
            .arg(script)
            .arg(WORK_CALLS.to_string())
            .arg(sleeping_threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the Ruby interpreter starts");
        let input = child.stdin.take().expect("stdin is piped");
        let mut output = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        output.read_line(&mut line).expect("a ready line");
        assert!(line.starts_with("ready"), "unexpected line {line:?}");
        Worker {
            child,
            input,
            output,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Runs the work once and returns the seconds it took, as the worker
    /// measured them.
    fn run(&mut self) -> f64 {
        writeln!(self.input, "go").expect("the worker reads");
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .expect("the worker prints the time");
        line.trim().parse().expect("a number of seconds")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run times of one configuration, and the sampler's stats of each
/// sampled run.
#[derive(Default)]
struct Runs {
    seconds: Vec<f64>,
    stats: Vec<Stats>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Runs every configuration once per round and prints the slowdown table.
fn slowdown(ruby: &str, rounds: usize, sleeping_threads: usize) {
    let mut worker = Worker::start(ruby, sleeping_threads);
    // A first run warms up the interpreter and the page cache.
    worker.run();
    let mut runs: Vec<Runs> = CONFIGS.iter().map(|_| Runs::default()).collect();
    for _ in 0..rounds {
        for (config, runs) in CONFIGS.iter().zip(runs.iter_mut()) {
            let Some(rate_hz) = config.rate_hz else {
                runs.seconds.push(worker.run());
                continue;
            };
            let mut options = SamplerOptions::new(worker.pid());
            options.rate_hz = rate_hz;
            options.pause = config.pause;
            let sampler = Sampler::start(options).expect("the sampler starts");
            runs.seconds.push(worker.run());
            runs.stats.push(sampler.stop().stats);
        }
    }

    let threads = sleeping_threads + 1;
    println!("\nslowdown, {threads} thread(s), {rounds} rounds of {WORK_CALLS} calls of fib(20)");
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "config", "median s", "slowdown", "failed %", "mean pause", "max pause"
    );
    let baseline = median(&runs[0].seconds);
    for (config, runs) in CONFIGS.iter().zip(&runs) {
        let seconds = median(&runs.seconds);
        let taken: u64 = runs.stats.iter().map(|s| s.taken).sum();
        let failed: u64 = runs.stats.iter().map(|s| s.failed).sum();
        let pauses: u64 = runs.stats.iter().map(|s| s.pauses).sum();
        let pause_ns: u64 = runs.stats.iter().map(|s| s.pause_ns).sum();
        let max_pause_ns = runs.stats.iter().map(|s| s.max_pause_ns).max();
        let failed_share = if taken > 0 {
            format!("{:.1}", 100.0 * failed as f64 / taken as f64)
        } else {
            "-".into()
        };
        let (mean_pause, max_pause) = if pauses > 0 {
            (
                format!("{:.0} us", pause_ns as f64 / pauses as f64 / 1e3),
                format!("{:.0} us", max_pause_ns.unwrap_or(0) as f64 / 1e3),
            )
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "{:<18} {:>9.3} {:>9.3} {:>9} {:>11} {:>11}",
            config.label(),
            seconds,
            seconds / baseline,
            failed_share,
            mean_pause,
            max_pause
        );
    }
}

/// Pauses a stack50 workload at `PAUSE_RATE_HZ` and prints the
/// distribution of the pause lengths.
fn pause_lengths(ruby: &str, threads: usize) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack50.rb");
    let mut child = Command::new(ruby)
        .arg(script)
        .arg("45")
        .arg(threads.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the Ruby interpreter starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("a ready line");
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id() as i32;

    let mut process = RubyProcess::open(pid, None).expect("the workload opens");
    let mut tracer = Tracer::new(pid);
    let period = Duration::from_secs_f64(1.0 / PAUSE_RATE_HZ);
    let ticks = (PAUSE_RATE_HZ * PAUSE_SECONDS) as usize;
    let mut lengths = Vec::with_capacity(ticks);
    let mut stacks = 0;
    let mut failed = 0;
    let start = Instant::now();
    for tick in 0..ticks {
        let due = start + period * tick as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let pause = tracer.pause().expect("the workload pauses");
        let ruby_threads = process.walker.threads().expect("the thread list");
        for thread in ruby_threads {
            let resolved = process.resolve_thread_with(&thread, None, |tid| pause.task_state(tid));
            if !matches!(resolved, Some((_, ThreadState::Running))) {
                continue;
            }
            match process.walker.stack(thread.ec) {
                Ok(_) => stacks += 1,
                Err(_) => failed += 1,
            }
        }
        lengths.push(pause.resume());
    }
    drop(tracer);
    let _ = child.kill();
    let _ = child.wait();

    lengths.sort();
    println!(
        "{threads:>7} {:>8} {:>9.0} {:>9.0} {:>9.0} {:>8} {:>7}",
        lengths.len(),
        micros(percentile(&lengths, 0.5)),
        micros(percentile(&lengths, 0.99)),
        micros(*lengths.last().expect("a pause")),
        stacks,
        failed
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ruby = args.next().unwrap_or_else(|| "ruby".into());
    let rounds = args
        .next()
        .map(|value| value.parse().expect("ROUNDS is a number"))
        .unwrap_or(DEFAULT_ROUNDS);

    slowdown(&ruby, rounds, 0);
    slowdown(&ruby, rounds, SLEEPING_THREADS);

    println!("\npause length at {PAUSE_RATE_HZ} Hz for {PAUSE_SECONDS} s, stacks of threads on a CPU read while paused");
    println!(
        "{:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "threads", "pauses", "p50 us", "p99 us", "max us", "stacks", "failed"
    );
    pause_lengths(&ruby, 1);
    pause_lengths(&ruby, 20);
}
