//! Recording reads of a live process and replaying them, so a walker test
//! can run on any machine without the interpreter that produced it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{MemoryError, RemoteMemory};

/// Wraps a memory source and keeps a copy of every successful read.
pub struct RecordingMemory<M> {
    inner: M,
    reads: RefCell<BTreeMap<u64, Vec<u8>>>,
}

impl<M: RemoteMemory> RecordingMemory<M> {
    pub fn new(inner: M) -> Self {
        RecordingMemory {
            inner,
            reads: RefCell::new(BTreeMap::new()),
        }
    }

    /// Returns the recorded reads, as (address, bytes), for [`ReplayMemory`].
    pub fn into_reads(self) -> BTreeMap<u64, Vec<u8>> {
        self.reads.into_inner()
    }
}

impl<M: RemoteMemory> RemoteMemory for RecordingMemory<M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.inner.read(addr, buf)?;
        let mut reads = self.reads.borrow_mut();
        let keep = match reads.get(&addr) {
            Some(previous) => previous.len() < buf.len(),
            None => true,
        };
        if keep {
            reads.insert(addr, buf.to_vec());
        }
        Ok(())
    }
}

/// Serves reads from recorded regions; anything else is unmapped.
#[derive(Clone, Debug, Default)]
pub struct ReplayMemory {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl ReplayMemory {
    pub fn new(regions: BTreeMap<u64, Vec<u8>>) -> Self {
        ReplayMemory { regions }
    }

    /// Iterates over the regions as (address, bytes).
    pub fn regions(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.regions.iter().map(|(&a, b)| (a, b.as_slice()))
    }

    /// Adds a region, as a test would to build a fake process image.
    pub fn insert(&mut self, addr: u64, bytes: Vec<u8>) {
        self.regions.insert(addr, bytes);
    }
}

impl RemoteMemory for ReplayMemory {
    /// Serves a read from the recorded regions, assembling it from several
    /// where they overlap or touch, so that a walker that now reads a span
    /// at once still replays reads recorded in pieces.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let unmapped = MemoryError::Unmapped {
            addr,
            len: buf.len(),
        };
        let end = addr.checked_add(buf.len() as u64).ok_or(unmapped.clone())?;
        let mut position = addr;
        while position < end {
            let covering = self
                .regions
                .range(..=position)
                .rev()
                .take_while(|(&start, _)| start + (super::MAX_READ as u64) >= position)
                .filter(|(&start, bytes)| start + bytes.len() as u64 > position)
                .max_by_key(|(&start, bytes)| start + bytes.len() as u64);
            let Some((&start, bytes)) = covering else {
                return Err(unmapped);
            };
            let region_end = (start + bytes.len() as u64).min(end);
            let from = (position - start) as usize;
            let to = (region_end - start) as usize;
            let at = (position - addr) as usize;
            buf[at..at + (to - from)].copy_from_slice(&bytes[from..to]);
            position = region_end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_serves_recorded_reads() {
        let mut regions = BTreeMap::new();
        regions.insert(0x1000, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let memory = ReplayMemory::new(regions);
        let mut buf = [0u8; 4];
        memory.read(0x1002, &mut buf).unwrap();
        assert_eq!(buf, [3, 4, 5, 6]);
        assert!(memory.read(0x1006, &mut buf).is_err());
        assert!(memory.read(0x0fff, &mut buf).is_err());
    }

    #[test]
    fn replay_joins_adjacent_regions() {
        let mut memory = ReplayMemory::default();
        memory.insert(0x1000, vec![1, 2, 3, 4]);
        memory.insert(0x1004, vec![5, 6, 7, 8]);
        memory.insert(0x1002, vec![30, 40]);
        let mut buf = [0u8; 8];
        memory.read(0x1000, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        let mut gap = [0u8; 4];
        memory.insert(0x2000, vec![1, 2]);
        memory.insert(0x2003, vec![4]);
        assert!(memory.read(0x2000, &mut gap).is_err());
    }

    #[test]
    fn recording_round_trips() {
        let mut image = ReplayMemory::default();
        image.insert(0x2000, (0u8..32).collect());
        let recorder = RecordingMemory::new(image);
        assert_eq!(recorder.read_u32(0x2004).unwrap(), 0x0706_0504);
        let replay = ReplayMemory::new(recorder.into_reads());
        assert_eq!(replay.read_u32(0x2004).unwrap(), 0x0706_0504);
        assert!(replay.read_u32(0x2000).is_err());
    }
}
