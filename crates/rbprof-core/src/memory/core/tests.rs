//! Core files built byte by byte, to check the reader on cases that a real
//! `gcore` rarely produces.

use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A file under the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rbprof-core-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A PT_LOAD segment to write: `data` is dumped, `mem_size` may be larger.
struct Load {
    vaddr: u64,
    data: Vec<u8>,
    mem_size: u64,
}

#[derive(Default)]
struct CoreBuilder {
    loads: Vec<Load>,
    notes: Vec<(u32, Vec<u8>)>,
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}
fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

impl CoreBuilder {
    fn load(mut self, vaddr: u64, data: Vec<u8>, mem_size: u64) -> Self {
        self.loads.push(Load {
            vaddr,
            data,
            mem_size,
        });
        self
    }

    fn note(mut self, kind: u32, desc: Vec<u8>) -> Self {
        self.notes.push((kind, desc));
        self
    }

    /// Adds NT_PRPSINFO with `pid` and one NT_PRSTATUS per thread.
    fn process(self, pid: i32, threads: &[i32]) -> Self {
        let mut info = vec![0u8; 136];
        info[PRPSINFO_PID..PRPSINFO_PID + 4].copy_from_slice(&pid.to_le_bytes());
        let mut builder = self.note(elf::NT_PRPSINFO, info);
        for tid in threads {
            let mut status = vec![0u8; 336];
            status[PRSTATUS_PID..PRSTATUS_PID + 4].copy_from_slice(&tid.to_le_bytes());
            builder = builder.note(elf::NT_PRSTATUS, status);
        }
        builder
    }

    /// Adds NT_FILE with (start, end, offset in bytes, path) entries.
    fn files(self, files: &[(u64, u64, u64, &str)]) -> Self {
        let mut desc = Vec::new();
        put64(&mut desc, files.len() as u64);
        put64(&mut desc, 4096);
        for (start, end, offset, _) in files {
            put64(&mut desc, *start);
            put64(&mut desc, *end);
            put64(&mut desc, offset / 4096);
        }
        for (_, _, _, path) in files {
            desc.extend_from_slice(path.as_bytes());
            desc.push(0);
        }
        self.note(elf::NT_FILE, desc)
    }

    fn build(&self) -> Vec<u8> {
        let mut notes = Vec::new();
        for (kind, desc) in &self.notes {
            put32(&mut notes, 5);
            put32(&mut notes, desc.len() as u32);
            put32(&mut notes, *kind);
            notes.extend_from_slice(b"CORE\0");
            pad4(&mut notes);
            notes.extend_from_slice(desc);
            pad4(&mut notes);
        }

        let count = 1 + self.loads.len();
        let notes_offset = 64 + 56 * count as u64;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
        out.resize(16, 0);
        put16(&mut out, elf::ET_CORE);
        put16(&mut out, elf::EM_X86_64);
        put32(&mut out, 1);
        put64(&mut out, 0);
        put64(&mut out, 64);
        put64(&mut out, 0);
        put32(&mut out, 0);
        for value in [64, 56, count as u16, 64, 0, 0] {
            put16(&mut out, value);
        }

        let program_header = |out: &mut Vec<u8>, kind, offset, vaddr, file_size, mem_size| {
            put32(out, kind);
            put32(out, elf::PF_R);
            for value in [offset, vaddr, 0, file_size, mem_size, 1] {
                put64(out, value);
            }
        };
        let len = notes.len() as u64;
        program_header(&mut out, elf::PT_NOTE, notes_offset, 0, len, 0);
        let mut offset = notes_offset + len;
        for load in &self.loads {
            let size = load.data.len() as u64;
            program_header(
                &mut out,
                elf::PT_LOAD,
                offset,
                load.vaddr,
                size,
                load.mem_size,
            );
            offset += size;
        }

        out.extend_from_slice(&notes);
        for load in &self.loads {
            out.extend_from_slice(&load.data);
        }
        out
    }
}

fn open(bytes: &[u8]) -> Result<CoreFile, String> {
    let file = TempFile::new(bytes);
    CoreFile::open(&file.0)
}

fn memory(core: CoreFile) -> CoreMemory {
    CoreMemory::new(Arc::new(core), HashMap::new())
}

#[test]
fn reads_across_adjacent_segments() {
    let bytes = CoreBuilder::default()
        .load(0x1000, vec![1; 0x1000], 0x1000)
        .load(0x2000, vec![2; 0x1000], 0x1000)
        .process(42, &[42, 43])
        .files(&[])
        .build();
    let memory = memory(open(&bytes).unwrap());
    let mut buf = [0u8; 4];
    memory.read(0x1ffe, &mut buf).unwrap();
    assert_eq!(buf, [1, 1, 2, 2]);
    assert_eq!(memory.core().pid(), 42);
    assert_eq!(memory.core().thread_ids(), &[42, 43]);
}

#[test]
fn undumped_bytes_come_from_the_mapped_file() {
    let mapped: Vec<u8> = (0..0x3000u32).map(|i| (i / 0x1000) as u8 + 10).collect();
    let library = TempFile::new(&mapped);
    let path = library.0.to_str().unwrap();
    // The first page is dumped (as gdb does for ELF headers), the second
    // has a segment without file bytes, the third has no segment at all.
    let bytes = CoreBuilder::default()
        .load(0x10000, vec![99; 0x1000], 0x1000)
        .load(0x11000, Vec::new(), 0x1000)
        .process(7, &[7])
        .files(&[(0x10000, 0x13000, 0, path)])
        .build();
    let memory = memory(open(&bytes).unwrap());
    let mut buf = [0u8; 3];
    memory.read(0x10fff, &mut buf).unwrap();
    assert_eq!(buf, [99, 11, 11]);
    memory.read(0x11fff, &mut buf).unwrap();
    assert_eq!(buf, [11, 12, 12]);
}

#[test]
fn substitute_replaces_recorded_path() {
    let local = TempFile::new(&[5u8; 0x1000]);
    let bytes = CoreBuilder::default()
        .process(7, &[7])
        .files(&[(0x10000, 0x11000, 0, "/no/such/libruby.so")])
        .build();
    let core = Arc::new(open(&bytes).unwrap());
    let missing = CoreMemory::new(Arc::clone(&core), HashMap::new());
    assert!(matches!(
        missing.read_u64(0x10000),
        Err(MemoryError::Other(_))
    ));
    let substitutes = HashMap::from([("/no/such/libruby.so".to_string(), local.0.clone())]);
    let memory = CoreMemory::new(core, substitutes);
    assert_eq!(memory.read_u64(0x10000).unwrap(), 0x0505_0505_0505_0505);
}

#[test]
fn unknown_address_is_unmapped() {
    let bytes = CoreBuilder::default()
        .load(0x1000, vec![1; 16], 16)
        .process(1, &[1])
        .files(&[])
        .build();
    let memory = memory(open(&bytes).unwrap());
    assert!(matches!(
        memory.read_u64(0x5000),
        Err(MemoryError::Unmapped { .. })
    ));
    // A read that starts in the segment and runs past its end fails too.
    assert!(memory.read_vec(0x1008, 16).is_err());
    assert!(memory.read_u64(u64::MAX - 3).is_err());
}

#[test]
fn executable_is_mapped_at_the_entry_point() {
    let mut auxv = Vec::new();
    for (key, value) in [(6u64, 4096u64), (AT_ENTRY, 0x5500_1234), (0, 0)] {
        put64(&mut auxv, key);
        put64(&mut auxv, value);
    }
    let bytes = CoreBuilder::default()
        .process(3, &[3])
        .note(elf::NT_AUXV, auxv)
        .files(&[
            (0x5500_0000, 0x5500_1000, 0, "/usr/bin/ruby"),
            (0x5500_1000, 0x5500_2000, 0x1000, "/usr/bin/ruby"),
            (0x7f00_0000, 0x7f00_1000, 0, "/lib/libc.so.6"),
        ])
        .build();
    let core = open(&bytes).unwrap();
    assert_eq!(core.executable(), Some("/usr/bin/ruby"));
    assert_eq!(core.mappings()[1].offset, 0x1000);
}

#[test]
fn rejects_garbage_and_other_elf_files() {
    assert_eq!(open(b"").err().unwrap(), "the file is empty");
    let garbage = open(b"this is not a core file at all").err().unwrap();
    assert!(garbage.starts_with("not an ELF file"), "{garbage}");
    let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let executable = open(&own).err().unwrap();
    assert!(executable.contains("not a core file"), "{executable}");
}

#[test]
fn rejects_truncated_core() {
    let bytes = CoreBuilder::default()
        .load(0x1000, vec![1; 0x1000], 0x1000)
        .process(1, &[1])
        .files(&[])
        .build();
    for len in [10, 40, 100, bytes.len() - 1] {
        let reason = open(&bytes[..len]).err().unwrap();
        assert!(reason.contains("truncated"), "{len} bytes: {reason}");
    }
}

#[test]
fn rejects_core_without_file_note() {
    let bytes = CoreBuilder::default().process(1, &[1]).build();
    let reason = open(&bytes).err().unwrap();
    assert!(reason.contains("NT_FILE"), "{reason}");
}

#[test]
fn rejects_impossible_file_note() {
    // A count of 2^60 mappings must fail before anything is allocated.
    let mut desc = Vec::new();
    put64(&mut desc, 1 << 60);
    put64(&mut desc, 4096);
    let bytes = CoreBuilder::default()
        .process(1, &[1])
        .note(elf::NT_FILE, desc)
        .build();
    let reason = open(&bytes).err().unwrap();
    assert!(reason.contains("do not fit"), "{reason}");

    let mut desc = Vec::new();
    put64(&mut desc, 1);
    put64(&mut desc, 4096);
    for value in [0x2000, 0x1000, 0] {
        put64(&mut desc, value);
    }
    desc.extend_from_slice(b"/x\0");
    let bytes = CoreBuilder::default()
        .process(1, &[1])
        .note(elf::NT_FILE, desc)
        .build();
    let reason = open(&bytes).err().unwrap();
    assert!(reason.contains("ends before it starts"), "{reason}");
}

#[test]
fn rejects_short_process_note() {
    let bytes = CoreBuilder::default()
        .note(elf::NT_PRSTATUS, vec![0; 8])
        .files(&[])
        .build();
    let reason = open(&bytes).err().unwrap();
    assert!(reason.contains("too short"), "{reason}");
}

/// A small core with every part the reader looks at.
fn sample_core() -> Vec<u8> {
    let mut auxv = Vec::new();
    put64(&mut auxv, AT_ENTRY);
    put64(&mut auxv, 0x10010);
    CoreBuilder::default()
        .load(0x10000, vec![1; 64], 0x1000)
        .load(0x20000, vec![2; 64], 64)
        .process(9, &[9, 10])
        .note(elf::NT_AUXV, auxv)
        .files(&[(0x10000, 0x11000, 0, "/no/such/file")])
        .build()
}

proptest::proptest! {
    #[test]
    fn damaged_core_fails_without_panic(
        changes in proptest::collection::vec((0usize..1024, proptest::prelude::any::<u8>()), 1..12),
        keep in 0usize..1024,
    ) {
        let mut bytes = sample_core();
        for (at, value) in changes {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        if keep > 16 {
            bytes.truncate(keep.max(bytes.len() / 2));
        }
        if let Ok(core) = open(&bytes) {
            let _ = core.executable();
            let _ = core.build_id_at(0x10000);
            let memory = memory(core);
            for addr in [0, 0x10000, 0x10fff, 0x20000, u64::MAX - 8] {
                let _ = memory.read_vec(addr, 256);
            }
        }
    }
}

#[test]
fn build_id_from_dumped_header_page() {
    let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let expected = crate::process::elf::ElfImage::parse(own.clone())
        .unwrap()
        .build_id()
        .map(<[u8]>::to_vec);
    assert!(expected.is_some(), "the test executable has no build ID");
    let bytes = CoreBuilder::default()
        .load(0x40000, own[..4096].to_vec(), 0x1000)
        .load(0x50000, vec![0; 4096], 0x1000)
        .process(1, &[1])
        .files(&[])
        .build();
    let core = open(&bytes).unwrap();
    assert_eq!(core.build_id_at(0x40000), expected);
    assert_eq!(core.build_id_at(0x50000), None);
    assert_eq!(core.build_id_at(0x60000), None);
}
