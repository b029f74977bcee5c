//! The processes that descend from a process: forked and spawned workers.
//!
//! The kernel lists each thread's children in
//! `/proc/PID/task/TID/children` (Linux 3.5+ with `CONFIG_PROC_CHILDREN`,
//! on in the kernels of the common distributions). Reading that for the
//! processes already followed costs a few reads per scan, so scans can run
//! many times a second. Where the file is missing, the parent of every
//! process is read from `/proc/*/stat` instead, which costs one read per
//! process on the machine.

use std::collections::{HashMap, HashSet};

/// Descendants returned by one scan at most; a fork bomb must not make the
/// sampler read without end.
pub const MAX_DESCENDANTS: usize = 1024;
/// Child ids accepted from one `children` file.
const MAX_CHILDREN_PER_TASK: usize = 4096;
/// Threads of one process whose `children` files are read.
const MAX_TASKS: usize = 8192;

/// A process found below the root, with the process that started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descendant {
    pub pid: i32,
    pub parent: i32,
}

/// Returns the processes below `root`, breadth first, at most `limit`.
/// `root` itself is not included.
pub fn descendants(root: i32, limit: usize) -> Vec<Descendant> {
    let limit = limit.min(MAX_DESCENDANTS);
    if root <= 0 {
        return Vec::new();
    }
    match children_of(root) {
        Some(first) => walk_children_files(root, first, limit),
        None => walk_parent_table(root, &parent_table(), limit),
    }
}

fn walk_children_files(root: i32, first: Vec<i32>, limit: usize) -> Vec<Descendant> {
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut queue: Vec<Descendant> = first
        .into_iter()
        .map(|pid| Descendant { pid, parent: root })
        .collect();
    let mut next = 0;
    while next < queue.len() && found.len() < limit {
        let entry = queue[next];
        next += 1;
        if !seen.insert(entry.pid) {
            continue;
        }
        found.push(entry);
        for child in children_of(entry.pid).unwrap_or_default() {
            if queue.len() < limit * 4 {
                queue.push(Descendant {
                    pid: child,
                    parent: entry.pid,
                });
            }
        }
    }
    found
}

/// Reads the children of every thread of `pid`, or `None` when the kernel
/// does not provide the files.
fn children_of(pid: i32) -> Option<Vec<i32>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut children = Vec::new();
    let mut any_file = false;
    for task in tasks.take(MAX_TASKS) {
        let Some(tid) = task
            .ok()
            .and_then(|t| t.file_name().to_str()?.parse::<i32>().ok())
        else {
            continue;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
            Ok(text) => {
                any_file = true;
                children.extend(parse_children(&text));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // Either the thread just exited or the kernel lacks the
                // file. The check of the main thread's file below decides.
            }
            Err(_) => any_file = true,
        }
    }
    if !any_file && !std::path::Path::new(&format!("/proc/{pid}/task/{pid}/children")).exists() {
        // A process that exits between the two reads also lands here; the
        // fallback then finds no children for it, which is right.
        return if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            None
        } else {
            Some(Vec::new())
        };
    }
    children.sort_unstable();
    children.dedup();
    Some(children)
}

/// Parses a `children` file: process ids separated by spaces.
fn parse_children(text: &str) -> impl Iterator<Item = i32> + '_ {
    text.split_ascii_whitespace()
        .filter_map(|word| word.parse::<i32>().ok())
        .filter(|&pid| pid > 0)
        .take(MAX_CHILDREN_PER_TASK)
}

/// Maps every process on the machine to its parent.
fn parent_table() -> HashMap<i32, i32> {
    let mut table = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(parent) =
            stat_field(&text, 4).and_then(|field| std::str::from_utf8(field).ok()?.parse().ok())
        {
            table.insert(pid, parent);
        }
    }
    table
}

fn walk_parent_table(root: i32, parents: &HashMap<i32, i32>, limit: usize) -> Vec<Descendant> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, &parent) in parents {
        children.entry(parent).or_default().push(pid);
    }
    for list in children.values_mut() {
        list.sort_unstable();
    }
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut queue = vec![root];
    let mut next = 0;
    while next < queue.len() && found.len() < limit {
        let parent = queue[next];
        next += 1;
        for &pid in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            if found.len() >= limit {
                break;
            }
            if seen.insert(pid) {
                found.push(Descendant { pid, parent });
                queue.push(pid);
            }
        }
    }
    found
}

/// Returns field `number` (1-based, as in `proc(5)`) of a `stat` line. The
/// command name (field 2) is in parentheses and may contain spaces and `)`,
/// so counting starts after the last `)`.
fn stat_field(text: &[u8], number: usize) -> Option<&[u8]> {
    if number < 3 {
        return None;
    }
    let close = text.iter().rposition(|&b| b == b')')?;
    text.get(close + 1..)?
        .split(|&b| b == b' ')
        .filter(|field| !field.is_empty())
        .nth(number - 3)
}

/// Returns the parent of a process.
pub fn parent_of(pid: i32) -> Option<i32> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    std::str::from_utf8(stat_field(&text, 4)?)
        .ok()?
        .parse()
        .ok()
}

/// Returns when the process started, in clock ticks since boot (field 22
/// of `stat`). A pid reused by a new process gets a different value.
pub fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    std::str::from_utf8(stat_field(&text, 22)?)
        .ok()?
        .parse()
        .ok()
}

/// Identifies the program a process runs: the device and inode of its
/// executable. It changes when the process calls exec with another file.
pub fn executable_identity(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn children_file_parses_ids() {
        assert_eq!(parse_children("12 34 \n").collect::<Vec<_>>(), [12, 34]);
        assert_eq!(parse_children("").count(), 0);
        assert_eq!(parse_children("x 0 -4 9").collect::<Vec<_>>(), [9]);
    }

    #[test]
    fn stat_fields_after_command_name() {
        let line = b"42 (a b) c) S 7 42 42 0 -1";
        assert_eq!(stat_field(line, 3), Some(&b"S"[..]));
        assert_eq!(stat_field(line, 4), Some(&b"7"[..]));
        assert_eq!(stat_field(line, 2), None);
        assert_eq!(stat_field(b"no paren", 4), None);
    }

    #[test]
    fn parent_table_walk_is_bounded_and_breadth_first() {
        let parents = HashMap::from([(2, 1), (3, 1), (4, 2), (5, 4), (6, 99)]);
        let all = walk_parent_table(1, &parents, 10);
        let pids: Vec<i32> = all.iter().map(|d| d.pid).collect();
        assert_eq!(pids, [2, 3, 4, 5]);
        assert_eq!(all[3], Descendant { pid: 5, parent: 4 });
        assert_eq!(walk_parent_table(1, &parents, 2).len(), 2);
        // A cycle in a corrupt table ends.
        let cycle = HashMap::from([(2, 1), (1, 2)]);
        assert_eq!(walk_parent_table(1, &cycle, 10).len(), 1);
    }

    #[test]
    fn finds_grandchildren_of_a_real_tree() {
        // sh starts sleep in the background, so the tree is
        // this test -> sh -> sleep.
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shell.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleeper: i32 = line.trim().parse().unwrap();

        let me = std::process::id() as i32;
        let found = descendants(me, 100);
        let via_table = walk_parent_table(me, &parent_table(), 100);
        let _ = Command::new("kill").arg(sleeper.to_string()).status();
        let _ = shell.wait();

        assert!(found.contains(&Descendant {
            pid: shell.id() as i32,
            parent: me
        }));
        assert!(found.contains(&Descendant {
            pid: sleeper,
            parent: shell.id() as i32
        }));
        assert!(via_table.contains(&Descendant {
            pid: sleeper,
            parent: shell.id() as i32
        }));
        assert!(start_time(me).is_some());
        assert!(executable_identity(me).is_some());
    }
}
