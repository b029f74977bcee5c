//! Reads a process's memory out of its ELF core file, as `gcore` and the
//! Linux kernel write them for x86_64 processes.
//!
//! PT_LOAD segments hold the memory that was dumped. gdb and the kernel
//! leave out file-backed mappings that the process never wrote to, such as
//! code and read-only data: such a mapping has no segment, or one whose
//! `p_filesz` is below its `p_memsz`. Those bytes are read from the mapped
//! file instead, at the offset that the NT_FILE note lists. That is what
//! the process saw, as long as the file has not changed since.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};

use super::{MemoryError, RemoteMemory};

/// Program headers accepted. Linux allows 65530 mappings per process by
/// default (`vm.max_map_count`), and this leaves room for raised limits.
const MAX_SEGMENTS: usize = 1 << 20;
/// The largest note segment read. gcore (gdb 13) writes under 4 KiB of
/// registers and signal state per thread, plus the list of mapped files.
const MAX_NOTES_SIZE: u64 = 64 << 20;
/// Offset of `pr_pid` in `struct elf_prstatus` on x86_64: after the
/// 12-byte signal info, `pr_cursig` and two 8-byte signal masks.
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_pid` in `struct elf_prpsinfo` on x86_64.
const PRPSINFO_PID: usize = 24;
/// Positions of the class (32 or 64-bit) and data (byte order) bytes in
/// `e_ident`.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
/// Sizes of the ELF header and of one program header, for ELF64.
const HEADER_SIZE: u64 = 64;
const PROGRAM_HEADER_SIZE: u64 = 56;
/// `AT_ENTRY` of the auxiliary vector: the executable's entry point.
const AT_ENTRY: u64 = libc::AT_ENTRY;

/// A file mapped into the process, from the NT_FILE note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    /// Offset in the file, in bytes.
    pub offset: u64,
    /// The path as the process saw it.
    pub path: String,
}

/// A PT_LOAD segment: `file_size` bytes at `offset` of the core file are
/// the memory at `vaddr`; the rest up to `mem_size` was not dumped.
#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    mem_size: u64,
    offset: u64,
    file_size: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.vaddr + self.mem_size
    }
}

/// A core file whose headers and notes were checked: where each dumped
/// range lies in the file, and the process facts from its notes.
pub struct CoreFile {
    path: PathBuf,
    file: File,
    /// Sorted by address.
    segments: Vec<Segment>,
    /// Sorted by address.
    mappings: Vec<FileMapping>,
    pid: i32,
    thread_ids: Vec<i32>,
    entry: Option<u64>,
}

impl CoreFile {
    /// Opens a core file and checks its headers and notes. The error is
    /// the reason the file cannot be used, for a message that names it.
    pub fn open(path: &Path) -> Result<CoreFile, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        check_ident(&file, size)?;
        let parsed = {
            let cache = ReadCache::new(&file);
            parse(&cache, size)?
        };
        Ok(CoreFile {
            path: path.to_path_buf(),
            file,
            segments: parsed.segments,
            mappings: parsed.mappings,
            pid: parsed.pid,
            thread_ids: parsed.thread_ids,
            entry: parsed.entry,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the process id that the core records.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Returns the kernel ids of the threads that the core records.
    pub fn thread_ids(&self) -> &[i32] {
        &self.thread_ids
    }

    /// Returns the mapped files, sorted by address.
    pub fn mappings(&self) -> &[FileMapping] {
        &self.mappings
    }

    /// Returns the path of the main executable: the file mapped at the
    /// entry point from the auxiliary vector.
    pub fn executable(&self) -> Option<&str> {
        let entry = self.entry?;
        mapping_at(&self.mappings, entry).map(|m| m.path.as_str())
    }

    /// Returns the GNU build ID of the ELF file mapped at `start`, when the
    /// core contains the mapping's first page with the ELF headers. The
    /// kernel dumps that page under the default `coredump_filter`, and so
    /// did gcore (gdb 13) in the tests.
    pub fn build_id_at(&self, start: u64) -> Option<Vec<u8>> {
        let mut page = vec![0u8; 4096];
        if !self.read_dumped(start, &mut page) {
            return None;
        }
        let page = &page[..];
        let header = elf::FileHeader64::<Endianness>::parse(page).ok()?;
        let endian = header.endian().ok()?;
        for ph in header.program_headers(endian, page).ok()? {
            // A note that does not fit in the page fails to parse and is
            // skipped.
            let Ok(Some(mut notes)) = ph.notes(endian, page) else {
                continue;
            };
            while let Ok(Some(note)) = notes.next() {
                if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                    return Some(note.desc().to_vec());
                }
            }
        }
        None
    }

    /// Fills `buf` from the dumped memory only, without falling back to
    /// mapped files. Returns false when any byte was not dumped.
    pub fn read_dumped(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(segment) = segment_at(&self.segments, addr) else {
            return false;
        };
        let into = addr - segment.vaddr;
        let fits = into
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= segment.file_size);
        fits && self.file.read_exact_at(buf, segment.offset + into).is_ok()
    }
}

/// Checks the identification bytes, so that the common mistakes (a file
/// that is not ELF, or a 32-bit one) get a plain reason.
fn check_ident(file: &File, size: u64) -> Result<(), String> {
    if size == 0 {
        return Err("the file is empty".into());
    }
    let mut ident = [0u8; 16];
    let len = size.min(ident.len() as u64) as usize;
    file.read_exact_at(&mut ident[..len], 0)
        .map_err(|e| e.to_string())?;
    if len < 4 || ident[..4] != elf::ELFMAG {
        let start: Vec<String> = ident[..len.min(4)]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return Err(format!(
            "not an ELF file (it starts with bytes [{}])",
            start.join(" ")
        ));
    }
    if size < HEADER_SIZE {
        return Err(format!(
            "truncated: {size} bytes, shorter than an ELF header"
        ));
    }
    if ident[EI_CLASS] != elf::ELFCLASS64 {
        return Err("a 32-bit ELF file; rbprof reads cores of x86_64 processes".into());
    }
    if ident[EI_DATA] != elf::ELFDATA2LSB {
        return Err("a big-endian ELF file; rbprof reads cores of x86_64 processes".into());
    }
    Ok(())
}

struct Parsed {
    segments: Vec<Segment>,
    mappings: Vec<FileMapping>,
    pid: i32,
    thread_ids: Vec<i32>,
    entry: Option<u64>,
}

fn parse(cache: &ReadCache<&File>, size: u64) -> Result<Parsed, String> {
    let header = elf::FileHeader64::<Endianness>::parse(cache)
        .map_err(|e| format!("invalid ELF header: {e}"))?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    match header.e_type(endian) {
        elf::ET_CORE => {}
        elf::ET_EXEC | elf::ET_DYN => {
            return Err("an executable or shared library, not a core file".into())
        }
        other => return Err(format!("an ELF file of type {other}, not a core file")),
    }
    if header.e_machine(endian) != elf::EM_X86_64 {
        return Err(format!(
            "a core of machine type {}; rbprof reads cores of x86_64 processes",
            header.e_machine(endian)
        ));
    }
    let count = header
        .phnum(endian, cache)
        .map_err(|e| format!("invalid program header count: {e}"))?;
    if count > MAX_SEGMENTS {
        return Err(format!("{count} program headers, more than {MAX_SEGMENTS}"));
    }
    let table_end = (count as u64)
        .checked_mul(PROGRAM_HEADER_SIZE)
        .and_then(|len| len.checked_add(header.e_phoff(endian)));
    match table_end {
        Some(end) if end > size => {
            return Err(format!(
                "truncated: its program headers need {end} bytes, but it has {size}"
            ))
        }
        Some(_) => {}
        None => return Err("the program header table has an invalid offset".into()),
    }
    let headers = header
        .program_headers(endian, cache)
        .map_err(|e| format!("invalid program headers: {e}"))?;

    // A core cut short (a full disk, an interrupted copy) fails here,
    // before any read finds a hole. gdb writes the section headers last.
    let sections = u64::from(header.e_shnum(endian))
        .checked_mul(u64::from(header.e_shentsize(endian)))
        .and_then(|len| len.checked_add(header.e_shoff(endian)));
    let mut needed = match sections {
        Some(end) if header.e_shoff(endian) != 0 => end,
        Some(_) => 0,
        None => return Err("the section header table has an invalid offset".into()),
    };
    for (index, ph) in headers.iter().enumerate() {
        let end = ph
            .p_offset(endian)
            .checked_add(ph.p_filesz(endian))
            .ok_or_else(|| format!("program header {index} has an invalid offset or size"))?;
        needed = needed.max(end);
    }
    if needed > size {
        return Err(format!(
            "truncated: its headers describe {needed} bytes, but it has {size}"
        ));
    }

    let mut segments = Vec::new();
    let mut notes = Notes::default();
    for (index, ph) in headers.iter().enumerate() {
        match ph.p_type(endian) {
            elf::PT_LOAD => {
                let segment = Segment {
                    vaddr: ph.p_vaddr(endian),
                    mem_size: ph.p_memsz(endian),
                    offset: ph.p_offset(endian),
                    file_size: ph.p_filesz(endian).min(ph.p_memsz(endian)),
                };
                if segment.vaddr.checked_add(segment.mem_size).is_none() {
                    return Err(format!("segment {index} wraps around the address space"));
                }
                if segment.mem_size > 0 {
                    segments.push(segment);
                }
            }
            elf::PT_NOTE => {
                if ph.p_filesz(endian) > MAX_NOTES_SIZE {
                    return Err(format!(
                        "note segment {index} is {} bytes, more than {MAX_NOTES_SIZE}",
                        ph.p_filesz(endian)
                    ));
                }
                let mut iter = ph
                    .notes(endian, cache)
                    .map_err(|e| format!("invalid note segment {index}: {e}"))?
                    .ok_or("a note segment without notes")?;
                while let Some(note) = iter
                    .next()
                    .map_err(|e| format!("invalid note in segment {index}: {e}"))?
                {
                    if note.name() == elf::ELF_NOTE_CORE {
                        notes.add(note.n_type(endian), note.desc())?;
                    }
                }
            }
            _ => {}
        }
    }
    segments.sort_by_key(|s| s.vaddr);

    let mappings = notes
        .mappings
        .ok_or("no NT_FILE note, so the mapped files (and libruby among them) are unknown")?;
    let pid = notes
        .pid
        .or(notes.thread_ids.first().copied())
        .ok_or("no NT_PRPSINFO or NT_PRSTATUS note, so the process is unknown")?;
    Ok(Parsed {
        segments,
        mappings,
        pid,
        thread_ids: notes.thread_ids,
        entry: notes.entry,
    })
}

#[derive(Default)]
struct Notes {
    pid: Option<i32>,
    thread_ids: Vec<i32>,
    entry: Option<u64>,
    mappings: Option<Vec<FileMapping>>,
}

impl Notes {
    fn add(&mut self, kind: u32, desc: &[u8]) -> Result<(), String> {
        match kind {
            elf::NT_PRPSINFO => self.pid = Some(i32_at(desc, PRPSINFO_PID)?),
            elf::NT_PRSTATUS => self.thread_ids.push(i32_at(desc, PRSTATUS_PID)?),
            elf::NT_AUXV => {
                self.entry = desc
                    .chunks_exact(16)
                    .find(|pair| u64_le(&pair[..8]) == AT_ENTRY)
                    .map(|pair| u64_le(&pair[8..]));
            }
            elf::NT_FILE => {
                let mappings = parse_file_note(desc)
                    .map_err(|reason| format!("invalid NT_FILE note: {reason}"))?;
                self.mappings = Some(mappings);
            }
            _ => {}
        }
        Ok(())
    }
}

fn u64_le(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
}

fn i32_at(desc: &[u8], offset: usize) -> Result<i32, String> {
    desc.get(offset..offset + 4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
        .ok_or_else(|| format!("a process note of {} bytes is too short", desc.len()))
}

/// Parses NT_FILE: a count, a page size, `count` triples of (start, end,
/// offset in pages), then `count` NUL-terminated paths.
fn parse_file_note(desc: &[u8]) -> Result<Vec<FileMapping>, String> {
    const ENTRY: usize = 24;
    let word = |at: usize| desc.get(at..at + 8).map(u64_le);
    let (Some(count), Some(page_size)) = (word(0), word(8)) else {
        return Err(format!("{} bytes, too short for its header", desc.len()));
    };

    let room = (desc.len() - 16) / ENTRY;
    if count > room as u64 {
        return Err(format!(
            "{count} mappings do not fit in {} bytes",
            desc.len()
        ));
    }
    if !page_size.is_power_of_two() {
        return Err(format!("page size {page_size} is not a power of two"));
    }

    let count = count as usize;
    let mut paths = desc[16 + count * ENTRY..].split(|&b| b == 0);
    let mut mappings = Vec::with_capacity(count);
    for index in 0..count {
        let at = 16 + index * ENTRY;
        let (start, end, pages) = (
            u64_le(&desc[at..at + 8]),
            u64_le(&desc[at + 8..at + 16]),
            u64_le(&desc[at + 16..at + 24]),
        );
        let path = paths
            .next()
            .ok_or_else(|| format!("mapping {index} has no path"))?;

        let offset = pages
            .checked_mul(page_size)
            .ok_or_else(|| format!("mapping {index} has an invalid file offset"))?;
        if start >= end {
            return Err(format!("mapping {index} ends before it starts"));
        }
        mappings.push(FileMapping {
            start,
            end,
            offset,
            path: String::from_utf8_lossy(path).into_owned(),
        });
    }
    mappings.sort_by_key(|m| m.start);
    Ok(mappings)
}

fn segment_at(segments: &[Segment], addr: u64) -> Option<&Segment> {
    let after = segments.partition_point(|s| s.vaddr <= addr);
    let segment = segments.get(after.checked_sub(1)?)?;
    (addr < segment.end()).then_some(segment)
}

fn mapping_at(mappings: &[FileMapping], addr: u64) -> Option<&FileMapping> {
    let after = mappings.partition_point(|m| m.start <= addr);
    let mapping = mappings.get(after.checked_sub(1)?)?;
    (addr < mapping.end).then_some(mapping)
}

/// The memory of a process as its core file recorded it, with the mapped
/// files filling in what was not dumped.
///
/// NOTE: only the Ruby binary is checked to be the build the process
/// mapped (by its build ID, when opening). Other mapped files are read as
/// this machine has them, which is wrong if they changed since the dump.
pub struct CoreMemory {
    core: Arc<CoreFile>,
    /// Local files read in place of recorded paths, such as a Ruby binary
    /// that lives elsewhere on this machine.
    substitutes: HashMap<String, PathBuf>,
    /// Mapped files opened so far, by recorded path; `None` when one
    /// could not be opened.
    files: Mutex<HashMap<String, Option<Arc<File>>>>,
}

impl CoreMemory {
    pub fn new(core: Arc<CoreFile>, substitutes: HashMap<String, PathBuf>) -> CoreMemory {
        CoreMemory {
            core,
            substitutes,
            files: Mutex::new(HashMap::new()),
        }
    }

    pub fn core(&self) -> &CoreFile {
        &self.core
    }

    /// Reads from the start of `buf` at `addr` and returns how many bytes
    /// came from one source: a dumped segment or one mapped file.
    fn read_some(&self, addr: u64, buf: &mut [u8]) -> Result<usize, MemoryError> {
        let segments = &self.core.segments;
        let mut limit = buf.len() as u64;
        if let Some(segment) = segment_at(segments, addr) {
            let into = addr - segment.vaddr;
            if into < segment.file_size {
                let len = limit.min(segment.file_size - into) as usize;
                self.core
                    .file
                    .read_exact_at(&mut buf[..len], segment.offset + into)
                    .map_err(|e| {
                        MemoryError::Other(format!("reading {}: {e}", self.core.path.display()))
                    })?;
                return Ok(len);
            }
            limit = limit.min(segment.end() - addr);
        } else {
            // Dumped bytes take precedence over a file mapped at the same
            // address.
            let next = segments.partition_point(|s| s.vaddr <= addr);
            if let Some(segment) = segments.get(next) {
                limit = limit.min(segment.vaddr - addr);
            }
        }

        let Some(mapping) = mapping_at(&self.core.mappings, addr) else {
            return Err(if segment_at(segments, addr).is_some() {
                MemoryError::Other(format!(
                    "the memory at {addr:#x} was not dumped into the core file"
                ))
            } else {
                MemoryError::Unmapped {
                    addr,
                    len: buf.len(),
                }
            });
        };
        let len = limit.min(mapping.end - addr) as usize;
        let file = self.mapped_file(&mapping.path).ok_or_else(|| {
            MemoryError::Other(format!(
                "the memory at {addr:#x} is not in the core file, and {} cannot be opened",
                mapping.path
            ))
        })?;
        let offset = mapping.offset.saturating_add(addr - mapping.start);
        file.read_exact_at(&mut buf[..len], offset).map_err(|e| {
            MemoryError::Other(format!(
                "the memory at {addr:#x} is not in the core file, and reading it \
                 from {} failed: {e}",
                mapping.path
            ))
        })?;
        Ok(len)
    }

    /// Opens a mapped file once, by its substitute if it has one. Only
    /// regular files are opened: a mapped device may act on an open.
    fn mapped_file(&self, path: &str) -> Option<Arc<File>> {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files
            .entry(path.to_string())
            .or_insert_with(|| {
                let local = self
                    .substitutes
                    .get(path)
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(path));
                let regular = std::fs::metadata(&local).is_ok_and(|m| m.is_file());
                regular
                    .then(|| File::open(&local).ok().map(Arc::new))
                    .flatten()
            })
            .clone()
    }
}

impl RemoteMemory for CoreMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if addr.checked_add(buf.len() as u64).is_none() {
            return Err(MemoryError::Unmapped {
                addr,
                len: buf.len(),
            });
        }
        let mut done = 0;
        while done < buf.len() {
            done += self.read_some(addr + done as u64, &mut buf[done..])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
