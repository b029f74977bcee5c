//! Records a replay fixture from a workload script:
//!
//! ```text
//! cargo run -p rbprof-core --example record_fixture -- RUBY SCRIPT OUT.json
//! ```
//!
//! Starts `RUBY SCRIPT`, waits for its `ready PID` line and a moment more,
//! records one walk of every thread, and kills the process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rbprof_core::fixture::Fixture;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ruby, script, out] = args.as_slice() else {
        eprintln!("usage: record_fixture RUBY SCRIPT OUT.json");
        std::process::exit(2);
    };
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
    std::thread::sleep(Duration::from_millis(300));

    let name = std::path::Path::new(script)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = Command::new(ruby)
        .args(["-e", "print RUBY_VERSION"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let result = Fixture::record(child.id() as i32, &format!("{name} on Ruby {version}"));
    let _ = child.kill();
    let _ = child.wait();

    let fixture = result.expect("the walk succeeds");
    let replayed = fixture.replay().expect("the recording replays");
    assert_eq!(
        replayed, fixture.threads,
        "replay differs from the live walk"
    );
    let json = serde_json::to_string(&fixture).expect("serialises");
    std::fs::write(out, json).expect("the fixture is written");
    eprintln!("wrote {out}: {} threads", fixture.threads.len());
}
