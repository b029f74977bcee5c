//! Pausing real Ruby processes with ptrace: every thread stops, nothing
//! stays stopped or traced afterwards, and stacks read while stopped do
//! not tear.
//!
//! The interpreter is `$RBPROF_TEST_RUBY`, else `ruby` on the PATH, and
//! the tests are skipped with a message when neither exists.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rbprof_core::launch::Child as LaunchedChild;
use rbprof_core::process::ptrace::{self, Tracer};
use rbprof_core::process::{task_ids, task_state};
use rbprof_core::ruby::RubyProcess;
use rbprof_core::{Batch, EndReason, Sampler, SamplerOptions, Stats, ThreadState};

mod common;
use common::{ruby, serial, workload, RubyGuard};

/// Starts a workload and waits for its `ready PID` line.
fn start(ruby: &str, script: &str, args: &[&str]) -> RubyGuard {
    let mut child = Command::new(ruby)
        .arg(workload(script))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ruby starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "unexpected first line {line:?}");
    RubyGuard { child }
}

/// Returns each thread's task state letter; threads that exit while they
/// are listed are left out.
fn states(pid: i32) -> Vec<(i32, char)> {
    task_ids(pid)
        .into_iter()
        .filter_map(|tid| task_state(pid, tid).map(|s| (tid, s.state as char)))
        .collect()
}

/// Asserts that no thread is stopped or traced.
fn assert_released(pid: i32) {
    for (tid, state) in states(pid) {
        assert!(
            state != 't' && state != 'T',
            "thread {tid} is in state {state} after the pause"
        );
        assert_eq!(
            ptrace::tracer_pid(pid, tid).unwrap_or(0),
            0,
            "thread {tid} is still traced"
        );
    }
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill has no memory preconditions. The pid is a child that
    // the test has not reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[test]
fn every_thread_stops_and_restarts() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "many_threads.rb", &["20"]);
    let pid = guard.pid();
    let mut tracer = Tracer::new(pid);

    // On a loaded machine a thread may not get a CPU to stop within the
    // deadline, and the pause then goes on without it. A later pause
    // finds it stopped.
    let mut attempts = 0;
    let pause = loop {
        let pause = tracer.pause().expect("the process pauses");
        attempts += 1;
        if pause.running_threads().is_empty() || attempts == 20 {
            break pause;
        }
    };
    let stopped = states(pid);
    assert!(stopped.len() > 20, "only {} threads", stopped.len());
    for (tid, state) in &stopped {
        assert_eq!(*state, 't', "thread {tid} is not in a trace stop");
    }
    assert_eq!(pause.stopped_threads(), stopped.len());
    assert!(pause.running_threads().is_empty());
    // The states read before the stop: the spinning threads were running.
    let on_cpu = stopped
        .iter()
        .filter(|(tid, _)| pause.task_state(*tid).is_some_and(|s| s.on_cpu()))
        .count();
    assert!(on_cpu > 0, "no thread was running before the pause");
    let length = pause.resume();
    assert!(length > Duration::ZERO);
    assert_released(pid);

    // Many pauses in a row leave nothing behind either.
    for _ in 0..200 {
        let pause = tracer.pause().expect("the process pauses");
        let attached = pause.stopped_threads() + pause.running_threads().len();
        assert!(attached > 20, "only {attached} threads attached");
        drop(pause);
    }
    drop(tracer);
    assert_released(pid);
}

#[test]
fn threads_started_while_pausing_stop_too() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "thread_churn.rb", &[]);
    let pid = guard.pid();

    let mut tracer = Tracer::new(pid);
    let mut relisted = 0;
    // The spawning threads need CPU time between the pauses, which a
    // loaded machine gives them slowly.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        let pause = tracer.pause().expect("the process pauses");
        relisted += pause.relisted_threads();
        // A thread that missed the deadline may start more threads, which
        // then run, so only complete pauses are checked.
        if !pause.running_threads().is_empty() {
            continue;
        }
        for (tid, state) in states(pid) {
            // A thread that exits while stopped becomes a zombie.
            if matches!(state, 'Z' | 'X') {
                continue;
            }
            assert_eq!(state, 't', "thread {tid} runs during the pause");
        }
        drop(pause);
        if relisted > 0 {
            break;
        }
    }
    drop(tracer);

    assert!(
        relisted > 0,
        "no thread started while the others were being stopped"
    );
    assert_released(pid);
}

#[test]
fn group_stopped_process_stays_stopped() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "many_threads.rb", &["6"]);
    let pid = guard.pid();
    signal(pid, libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while states(pid).iter().any(|(_, state)| *state != 'T') {
        assert!(
            Instant::now() < deadline,
            "SIGSTOP did not stop the process"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut tracer = Tracer::new(pid);
    let pause = tracer.pause().expect("a stopped process pauses");
    assert!(pause.running_threads().is_empty());
    drop(pause);
    drop(tracer);

    // A detached thread runs for a moment to enter the group-stop again,
    // and a thread that left the group-stop for good would stay out.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running: Vec<_> = states(pid)
            .into_iter()
            .filter(|(_, state)| *state != 'T')
            .collect();
        if running.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "threads left the group-stop: {running:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for (tid, _) in states(pid) {
        assert_eq!(ptrace::tracer_pid(pid, tid), Some(0));
    }

    signal(pid, libc::SIGCONT);
    let deadline = Instant::now() + Duration::from_secs(5);
    while states(pid).iter().any(|(_, state)| *state == 'T') {
        assert!(Instant::now() < deadline, "SIGCONT did not continue it");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn signal_sent_during_pause_arrives() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let mut guard = start(&ruby, "exit_on_term.rb", &[]);
    let pid = guard.pid();
    let mut tracer = Tracer::new(pid);
    let pause = tracer.pause().expect("the process pauses");
    signal(pid, libc::SIGTERM);
    // Stopped threads do not run the handler.
    std::thread::sleep(Duration::from_millis(100));
    assert!(guard.child.try_wait().unwrap().is_none());
    drop(pause);
    drop(tracer);

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM was not delivered");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn traced_process_cannot_be_paused() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "many_threads.rb", &["3"]);
    let pid = guard.pid();
    let (attached_tx, attached_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    // Another tracer: a thread that attaches to the main thread and keeps
    // it until the test is done with it. It ends, and so detaches, at the
    // end of the test.
    let other = std::thread::spawn(move || {
        // SAFETY: PTRACE_SEIZE reads no memory.
        let result = unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        attached_tx.send(result).unwrap();
        let _ = done_rx.recv();
    });
    assert_eq!(attached_rx.recv().unwrap(), 0, "the other tracer attaches");

    let mut options = SamplerOptions::new(pid);
    options.pause = true;
    let error = Sampler::start(options).err().expect("a traced process");
    assert_eq!(error.code(), "ERR_PERMISSION_DENIED", "{error}");

    let error = ptrace::check_pause(pid).expect_err("a traced process");
    assert_eq!(error.code(), "ERR_PERMISSION_DENIED");
    let message = error.to_string();
    let own_pid = std::process::id();
    assert!(
        message.contains(&format!("already traced by process {own_pid}")),
        "{message}"
    );
    assert!(error.hint().unwrap().contains("--nonblocking"));
    // The threads stopped before the refusal run again.
    for (tid, state) in states(pid) {
        assert!(state != 't', "thread {tid} stayed stopped");
    }

    done_tx.send(()).unwrap();
    other.join().unwrap();
    assert_released(pid);
}

#[test]
fn stacks_read_while_paused_do_not_tear() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "recursive.rb", &[]);
    let pid = guard.pid();
    let mut process = RubyProcess::open(pid, None).expect("the workload opens");
    let mut tracer = Tracer::new(pid);
    const READS: usize = 2000;

    let mut failed_running = 0;
    for _ in 0..READS {
        let thread = process.walker.threads().expect("threads")[0].clone();
        if process.walker.stack(thread.ec).is_err() {
            failed_running += 1;
        }
    }
    let mut failed_paused = 0;
    for _ in 0..READS {
        let pause = tracer.pause().expect("the process pauses");
        let thread = process.walker.threads().expect("threads")[0].clone();
        if let Err(error) = process.walker.stack(thread.ec) {
            eprintln!("paused read failed: {error}");
            failed_paused += 1;
        }
        drop(pause);
    }
    eprintln!("failed reads of {READS}: running {failed_running}, paused {failed_paused}");
    assert_eq!(failed_paused, 0, "stacks read while paused tore");
    drop(tracer);
    assert_released(pid);
}

/// Samples for `seconds` and returns every batch, the last one with the
/// end reason.
fn record(options: SamplerOptions, seconds: f64) -> Vec<Batch> {
    let sampler = Sampler::start(options).expect("the sampler starts");
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
    batches
}

fn final_stats(batches: &[Batch]) -> Stats {
    batches.last().expect("a batch").stats
}

#[test]
fn paused_sampler_reads_no_torn_stack() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "recursive.rb", &[]);
    let pid = guard.pid();

    let mut options = SamplerOptions::new(pid);
    options.rate_hz = 999.0;
    let running = final_stats(&record(options.clone(), 1.0));
    options.pause = true;
    let batches = record(options, 2.0);
    let paused = final_stats(&batches);
    eprintln!("failed ticks: running {running:?}, paused {paused:?}");

    assert!(paused.taken > 50, "only {} ticks", paused.taken);
    assert_eq!(paused.failed, 0, "ticks with a torn stack");
    assert_eq!(paused.pauses, paused.taken);
    assert!(paused.pause_ns >= paused.max_pause_ns);
    assert!(paused.max_pause_ns > 0);
    // The main thread was on a CPU before each pause, so it was sampled.
    let samples: usize = batches.iter().map(|b| b.samples.len()).sum();
    assert!(samples > 50, "only {samples} samples");
    assert_eq!(running.pauses, 0);
}

#[test]
fn paused_sampler_keeps_thread_states() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let guard = start(&ruby, "many_threads.rb", &["6"]);
    let mut options = SamplerOptions::new(guard.pid());
    options.pause = true;
    options.idle = true;
    let batches = record(options, 1.0);
    let states: Vec<ThreadState> = batches
        .iter()
        .flat_map(|b| b.samples.iter().map(|s| s.state))
        .collect();
    // While paused, /proc shows every thread stopped, so these come from
    // the states read before each pause.
    assert!(states.contains(&ThreadState::Running), "no running sample");
    assert!(states.contains(&ThreadState::Blocked), "no blocked sample");
    assert_released(guard.pid());
}

#[test]
fn launched_child_keeps_exit_status() {
    let _serial = serial();
    let Some(ruby) = ruby() else { return };
    let script = workload("exit_status.rb").display().to_string();
    // Exits with status 3 after 1.5 s of work.
    let command = vec![ruby, script, "3".into(), "1.5".into()];
    let child = LaunchedChild::launch(&command).expect("the command starts");
    let mut options = SamplerOptions::new(child.pid());
    options.launched = true;
    options.pause = true;
    options.rate_hz = 999.0;
    let sampler = Sampler::start(options).expect("the sampler starts");

    let exit = child
        .wait(Duration::from_secs(20))
        .expect("the child exits");
    assert_eq!(exit.code, Some(3), "{exit:?}");
    let mut last = None;
    while let Some(batch) = sampler.next_batch(Duration::from_secs(5)) {
        if batch.end.is_some() {
            last = Some(batch);
            break;
        }
    }
    let last = last.expect("the recording ends");
    assert_eq!(last.end, Some(EndReason::ProcessExited));
    assert!(last.stats.pauses > 10, "{:?}", last.stats);
}
