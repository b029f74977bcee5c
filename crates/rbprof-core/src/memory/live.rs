//! Reads a live process with `process_vm_readv`, falling back to
//! `/proc/PID/mem` where that syscall is blocked (some seccomp profiles).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{MemoryError, RemoteMemory};

/// The memory of a running process.
pub struct ProcessMemory {
    pid: i32,
    /// Set once `process_vm_readv` returned ENOSYS or EPERM while
    /// `/proc/PID/mem` worked, so later reads go straight to the file.
    use_file: AtomicBool,
    mem_file: Option<File>,
}

impl ProcessMemory {
    pub fn new(pid: i32) -> ProcessMemory {
        ProcessMemory {
            pid,
            use_file: AtomicBool::new(false),
            mem_file: File::open(format!("/proc/{pid}/mem")).ok(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn read_vm(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`, which is valid for writes of
        // `buf.len()` bytes for the whole call. The kernel checks `remote`
        // against the target's address space, not ours.
        let copied = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        if copied < 0 {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
        if copied as usize != buf.len() {
            // A partial read means the range crosses into unmapped memory.
            return Err(libc::EFAULT);
        }
        Ok(())
    }

    fn read_file(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let Some(file) = &self.mem_file else {
            return Err(MemoryError::PermissionDenied);
        };
        file.read_exact_at(buf, addr)
            .map_err(|error| match error.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => MemoryError::PermissionDenied,
                Some(libc::ESRCH) => MemoryError::ProcessGone,
                _ => MemoryError::Unmapped {
                    addr,
                    len: buf.len(),
                },
            })
    }

    fn error_for(&self, errno: i32, addr: u64, len: usize) -> MemoryError {
        match errno {
            libc::EFAULT | libc::EIO => MemoryError::Unmapped { addr, len },
            libc::EPERM | libc::EACCES => MemoryError::PermissionDenied,
            libc::ESRCH => MemoryError::ProcessGone,
            other => MemoryError::Other(std::io::Error::from_raw_os_error(other).to_string()),
        }
    }
}

impl RemoteMemory for ProcessMemory {
    fn read_two(
        &self,
        first: (u64, &mut [u8]),
        second: (u64, &mut [u8]),
    ) -> Result<(), MemoryError> {
        let total = first.1.len() + second.1.len();
        let valid = |addr: u64, len: usize| addr != 0 && addr.checked_add(len as u64).is_some();
        if self.use_file.load(Ordering::Relaxed)
            || !valid(first.0, first.1.len())
            || !valid(second.0, second.1.len())
        {
            self.read(first.0, first.1)?;
            return self.read(second.0, second.1);
        }
        let local = [
            libc::iovec {
                iov_base: first.1.as_mut_ptr().cast(),
                iov_len: first.1.len(),
            },
            libc::iovec {
                iov_base: second.1.as_mut_ptr().cast(),
                iov_len: second.1.len(),
            },
        ];
        let remote = [
            libc::iovec {
                iov_base: first.0 as *mut libc::c_void,
                iov_len: first.1.len(),
            },
            libc::iovec {
                iov_base: second.0 as *mut libc::c_void,
                iov_len: second.1.len(),
            },
        ];
        // SAFETY: each local iovec describes one of the two buffers, valid
        // for writes of its length for the whole call. The kernel checks
        // the remote ranges against the target's address space.
        let copied =
            unsafe { libc::process_vm_readv(self.pid, local.as_ptr(), 2, remote.as_ptr(), 2, 0) };
        if copied >= 0 && copied as usize == total {
            return Ok(());
        }
        // A failure or a short copy: read each alone for the precise error.
        self.read(first.0, first.1)?;
        self.read(second.0, second.1)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if buf.is_empty() {
            return Ok(());
        }
        if addr == 0 || addr.checked_add(buf.len() as u64).is_none() {
            return Err(MemoryError::Unmapped {
                addr,
                len: buf.len(),
            });
        }
        if self.use_file.load(Ordering::Relaxed) {
            return self.read_file(addr, buf);
        }
        match self.read_vm(addr, buf) {
            Ok(()) => Ok(()),
            Err(errno @ (libc::ENOSYS | libc::EPERM)) => match self.read_file(addr, buf) {
                Ok(()) => {
                    self.use_file.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Err(_) => Err(self.error_for(errno, addr, buf.len())),
            },
            Err(errno) => Err(self.error_for(errno, addr, buf.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory() {
        let value: u64 = 0x1122_3344_5566_7788;
        let memory = ProcessMemory::new(std::process::id() as i32);
        let read = memory.read_u64(&value as *const u64 as u64).unwrap();
        assert_eq!(read, value);
    }

    #[test]
    fn null_address_is_unmapped() {
        let memory = ProcessMemory::new(std::process::id() as i32);
        assert!(matches!(
            memory.read_u64(0),
            Err(MemoryError::Unmapped { .. })
        ));
    }
}
