//! Replay fixtures: the memory reads of one walk of a real process, with
//! the stacks that walk produced, so the walker can be tested for every
//! Ruby version on any machine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::memory::{RecordingMemory, RemoteMemory, ReplayMemory};
use crate::ruby::layout::{self, Version};
use crate::ruby::walker::{WalkError, Walker};
use crate::ruby::RubyProcess;

/// One thread's stack as text: `name - path:line` per frame, outermost
/// first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadStack {
    pub name: Option<String>,
    pub tid: i32,
    pub frames: Vec<String>,
}

/// A recorded walk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fixture {
    /// What the fixture shows, e.g. the workload it was recorded from.
    pub description: String,
    pub ruby_version: String,
    pub vm_ptr_address: u64,
    pub symbol_table: Option<u64>,
    /// Offset of `tid` in glibc's `struct pthread`, for Rubies that do not
    /// record kernel thread ids.
    #[serde(default)]
    pub pthread_tid_offset: Option<u64>,
    /// Recorded reads as (address, hex bytes).
    pub regions: Vec<(u64, String)>,
    pub threads: Vec<ThreadStack>,
}

/// Walks every thread and renders its stack as text.
pub fn walk_all<M: RemoteMemory>(walker: &mut Walker<M>) -> Result<Vec<ThreadStack>, WalkError> {
    let mut stacks = Vec::new();
    for thread in walker.threads()? {
        let frames = walker.stack(thread.ec)?;
        let name = walker.thread_name(&thread);
        let frames = frames
            .iter()
            .map(|frame| {
                let function = walker.functions.get(frame.function);
                match function {
                    Some(f) => format!("{} - {}:{}", f.name, f.path, frame.line),
                    None => format!("<function {}>", frame.function),
                }
            })
            .collect();
        stacks.push(ThreadStack {
            name,
            tid: thread.tid,
            frames,
        });
    }
    Ok(stacks)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Fixture {
    /// Records one walk of every thread of `pid`. The target is stopped
    /// with SIGSTOP for the walk so that the reads are consistent, and
    /// continued afterwards.
    pub fn record(pid: i32, description: &str) -> Result<Fixture> {
        let process = RubyProcess::open(pid, None)?;
        let layout = process.layout;
        let memory = RecordingMemory::new(crate::memory::ProcessMemory::new(pid));
        let mut walker = Walker::new(memory, layout, process.vm_ptr_address, process.symbol_table);
        let pthread_tid_offset = process.walker.pthread_tid_offset();
        walker.set_pthread_tid_offset(pthread_tid_offset);
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let walked = walk_all(&mut walker);
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let threads = walked.map_err(|error| Error::VmUnreadable {
            pid,
            reason: error.to_string(),
        })?;
        let regions = walker
            .into_memory()
            .into_reads()
            .into_iter()
            .map(|(address, bytes)| (address, to_hex(&bytes)))
            .collect();
        Ok(Fixture {
            description: description.into(),
            ruby_version: process.version,
            vm_ptr_address: process.vm_ptr_address,
            symbol_table: process.symbol_table,
            pthread_tid_offset,
            regions,
            threads,
        })
    }

    /// Returns the recorded memory.
    pub fn memory(&self) -> Result<ReplayMemory, String> {
        let mut regions = BTreeMap::new();
        for (address, hex) in &self.regions {
            let bytes = from_hex(hex).ok_or(format!("region {address:#x} is not hex"))?;
            regions.insert(*address, bytes);
        }
        Ok(ReplayMemory::new(regions))
    }

    /// Returns a walker over the recorded memory with the layout of the
    /// recorded version.
    pub fn walker(&self) -> Result<Walker<ReplayMemory>, String> {
        let version = Version::parse(&self.ruby_version).ok_or("bad version")?;
        let layout = layout::find(version).ok_or("no layout for the version")?;
        let mut walker = Walker::new(
            self.memory()?,
            layout,
            self.vm_ptr_address,
            self.symbol_table,
        );
        walker.set_pthread_tid_offset(self.pthread_tid_offset);
        Ok(walker)
    }

    /// Walks the recorded memory again.
    pub fn replay(&self) -> Result<Vec<ThreadStack>, String> {
        let mut walker = self.walker()?;
        walk_all(&mut walker).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&bytes), "0001abff");
        assert_eq!(from_hex("0001abff"), Some(bytes));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
