//! Reading the target's memory through one trait, so the same walker runs
//! on a live process, a recording of reads, or a core file.

mod core;
mod live;
mod replay;

pub use self::core::{CoreFile, CoreMemory, FileMapping};
pub use live::ProcessMemory;
pub use replay::{RecordingMemory, ReplayMemory};

/// The largest single read the walker makes. Every length taken from the
/// target is checked against this before a buffer is allocated.
pub const MAX_READ: usize = 4 << 20;

/// Cause of a failed read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("address {addr:#x} (+{len}) is not mapped in the target")]
    Unmapped { addr: u64, len: usize },
    #[error("read of {len} bytes at {addr:#x} exceeds the limit")]
    TooLarge { addr: u64, len: usize },
    #[error("permission denied reading the target's memory")]
    PermissionDenied,
    #[error("the target process is gone")]
    ProcessGone,
    #[error("read failed: {0}")]
    Other(String),
}

/// A source of the target's memory.
pub trait RemoteMemory {
    /// Fills `buf` with the bytes at `addr`, or fails without a partial read.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Fills two buffers, in order, as close together in time as the
    /// source allows: a live process copies both in one syscall. The
    /// default reads one after the other.
    fn read_two(
        &self,
        first: (u64, &mut [u8]),
        second: (u64, &mut [u8]),
    ) -> Result<(), MemoryError> {
        self.read(first.0, first.1)?;
        self.read(second.0, second.1)
    }

    /// Reads a little-endian u64.
    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let mut buf = [0u8; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Reads a little-endian u32.
    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let mut buf = [0u8; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    /// Reads `len` bytes into a new buffer, after checking `len` against
    /// [`MAX_READ`].
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, MemoryError> {
        if len > MAX_READ {
            return Err(MemoryError::TooLarge { addr, len });
        }
        let mut buf = vec![0u8; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }
}

impl<M: RemoteMemory + ?Sized> RemoteMemory for &M {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read(addr, buf)
    }

    fn read_two(
        &self,
        first: (u64, &mut [u8]),
        second: (u64, &mut [u8]),
    ) -> Result<(), MemoryError> {
        (**self).read_two(first, second)
    }
}

/// Reads the little-endian u64 at `offset` of `bytes`, or 0 when the slice
/// is too short (callers size their buffers from the layout, so a short
/// slice only happens with a corrupt layout and yields a failed check).
pub fn u64_at(bytes: &[u8], offset: u64) -> u64 {
    let start = offset as usize;
    match bytes.get(start..start.saturating_add(8)) {
        Some(slice) => u64::from_le_bytes(slice.try_into().unwrap_or([0; 8])),
        None => 0,
    }
}

/// Reads the little-endian u32 at `offset` of `bytes`, or 0 when too short.
pub fn u32_at(bytes: &[u8], offset: u64) -> u32 {
    let start = offset as usize;
    match bytes.get(start..start.saturating_add(4)) {
        Some(slice) => u32::from_le_bytes(slice.try_into().unwrap_or([0; 4])),
        None => 0,
    }
}
