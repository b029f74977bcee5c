//! ELF symbols of the file that contains the Ruby VM, from `.dynsym` and
//! `.symtab`, and the load bias that maps them to the target's addresses.

use std::collections::HashMap;

use object::{Object, ObjectKind, ObjectSegment, ObjectSymbol};

use super::maps::Mapping;

/// The largest ELF file rbprof loads; a static Ruby is about 20 MiB.
const MAX_ELF_SIZE: u64 = 512 << 20;

/// A loadable segment: file bytes `[offset, offset + file_size)` appear at
/// virtual address `vaddr`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    offset: u64,
    file_size: u64,
}

/// Symbols and segments of one ELF file, with the file's bytes for
/// disassembling code that the symbol table alone does not explain.
pub struct ElfImage {
    data: Vec<u8>,
    symbols: HashMap<String, u64>,
    segments: Vec<Segment>,
    position_independent: bool,
    /// The GNU build ID, which differs between builds of a file.
    build_id: Option<Vec<u8>>,
}

impl ElfImage {
    /// Parses an ELF file from its bytes.
    pub fn parse(data: Vec<u8>) -> Result<ElfImage, String> {
        let (symbols, segments, position_independent, build_id) = {
            let file = object::File::parse(&*data).map_err(|e| e.to_string())?;
            let mut symbols = HashMap::new();
            for symbol in file.dynamic_symbols().chain(file.symbols()) {
                let (Ok(name), address) = (symbol.name(), symbol.address()) else {
                    continue;
                };
                if address != 0 && !name.is_empty() {
                    symbols.entry(name.to_string()).or_insert(address);
                }
            }
            let segments = file
                .segments()
                .map(|segment| {
                    let (offset, file_size) = segment.file_range();
                    Segment {
                        vaddr: segment.address(),
                        offset,
                        file_size,
                    }
                })
                .collect();
            let position_independent = file.kind() != ObjectKind::Executable;
            let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
            (symbols, segments, position_independent, build_id)
        };
        Ok(ElfImage {
            data,
            symbols,
            segments,
            position_independent,
            build_id,
        })
    }

    /// Reads and parses the file at `path`, refusing files over 512 MiB.
    pub fn open(path: &std::path::Path) -> Result<ElfImage, String> {
        let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        if size > MAX_ELF_SIZE {
            return Err(format!(
                "{} is {size} bytes, too large for an ELF image",
                path.display()
            ));
        }
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        Self::parse(data)
    }

    /// Returns the GNU build ID, if the file has one.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// Returns the link-time address of a symbol.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).copied()
    }

    /// Returns up to `len` bytes of the file at link-time address `vaddr`.
    pub fn bytes_at(&self, vaddr: u64, len: usize) -> Option<&[u8]> {
        let segment = self
            .segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr < s.vaddr + s.file_size)?;
        let start = (segment.offset + (vaddr - segment.vaddr)) as usize;
        let segment_end = (segment.offset + segment.file_size) as usize;
        let end = start
            .saturating_add(len)
            .min(segment_end)
            .min(self.data.len());
        self.data.get(start..end)
    }

    /// Computes what to add to link-time addresses to get the target's
    /// addresses, from the mappings of this file. Zero for a non-PIE
    /// executable.
    pub fn load_bias(&self, mappings: &[&Mapping]) -> Option<u64> {
        if !self.position_independent {
            return Some(0);
        }
        // The mapping of the lowest file offset is the start of a PT_LOAD
        // segment rounded down to a page, so the segment that contains that
        // offset gives the virtual address it was linked at.
        let first = mappings.iter().min_by_key(|m| m.offset)?;
        let segment = self.segments.iter().find(|s| {
            let page_start = s.offset & !0xfff;
            page_start <= first.offset && first.offset < s.offset + s.file_size.max(1)
        })?;
        let linked = segment
            .vaddr
            .wrapping_sub(segment.offset)
            .wrapping_add(first.offset);
        Some(first.start.wrapping_sub(linked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_executable() -> ElfImage {
        ElfImage::open(&std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn finds_symbols_of_own_executable() {
        let image = own_executable();
        assert!(image.symbol("main").is_some());
        assert!(image.symbol("no_such_symbol_here").is_none());
    }

    #[test]
    fn bias_maps_symbol_to_live_address() {
        let image = own_executable();
        let text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let maps = super::super::maps::parse_maps(&text);
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy();
        let own: Vec<&Mapping> = maps
            .iter()
            .filter(|m| m.path.as_deref() == Some(&*exe))
            .collect();
        let bias = image.load_bias(&own).unwrap();
        let linked = image.symbol("main").unwrap();
        let live = bias.wrapping_add(linked);
        let code = image.bytes_at(linked, 16).unwrap();
        let mut buf = [0u8; 16];
        use crate::memory::RemoteMemory;
        crate::memory::ProcessMemory::new(std::process::id() as i32)
            .read(live, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], code);
    }

    #[test]
    fn rejects_garbage() {
        assert!(ElfImage::parse(b"not an elf file".to_vec()).is_err());
    }
}
