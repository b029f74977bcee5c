//! Measures what one sample costs and the highest rate the sampler holds.
//!
//! ```text
//! cargo run --release -p rbprof-bench --bin sample-cost [-- RUBY]
//! ```
//!
//! Starts `bench/workloads/stack50.rb` (a stack of about 50 frames), then
//! 1. times reads of its one thread's stack, done back to back;
//! 2. runs the sampler at increasing rates for two seconds each and counts
//!    late ticks.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rbprof_core::ruby::RubyProcess;
use rbprof_core::{Sampler, SamplerOptions};

const READS: usize = 2000;
const RATES_HZ: [f64; 7] = [99.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0];

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_workload(ruby: &str) -> Guard {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/stack50.rb");
    let mut child = Command::new(ruby)
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the Ruby interpreter starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a ready line");
    std::thread::sleep(Duration::from_millis(200));
    Guard(child)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() {
    let ruby = std::env::args().nth(1).unwrap_or_else(|| "ruby".into());
    let workload = start_workload(&ruby);
    let pid = workload.0.id() as i32;

    let mut process = RubyProcess::open(pid, None).expect("the workload opens");
    let thread = process.walker.threads().expect("threads")[0].clone();
    let mut times = Vec::with_capacity(READS);
    let mut depth = 0;
    let mut failed = 0;
    for _ in 0..READS {
        let started = Instant::now();
        match process.walker.stack(thread.ec) {
            Ok(frames) => depth = depth.max(frames.len()),
            Err(_) => failed += 1,
        }
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / READS as u32;
    println!("Ruby {} ({})", process.version, process.binary_path);
    println!(
        "stack read: {depth} frames, mean {:.1} us, p50 {:.1} us, p99 {:.1} us, \
         {failed} of {READS} failed",
        mean.as_secs_f64() * 1e6,
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
    println!(
        "at 99 Hz one thread costs {:.2} % of a CPU",
        mean.as_secs_f64() * 99.0 * 100.0
    );

    println!(
        "\n{:>8} {:>8} {:>8} {:>8}",
        "rate Hz", "taken", "late", "failed"
    );
    let mut highest_clean = None;
    for rate in RATES_HZ {
        let mut options = SamplerOptions::new(pid);
        options.rate_hz = rate;
        let sampler = Sampler::start(options).expect("the sampler starts");
        std::thread::sleep(Duration::from_secs(2));
        let stats = sampler.stop().stats;
        println!(
            "{rate:>8} {:>8} {:>8} {:>8}",
            stats.taken, stats.late, stats.failed
        );
        if stats.late == 0 {
            highest_clean = Some(rate);
        }
    }
    match highest_clean {
        Some(rate) => println!("\nhighest rate without late samples: {rate} Hz"),
        None => println!("\nevery rate had late samples"),
    }
}
