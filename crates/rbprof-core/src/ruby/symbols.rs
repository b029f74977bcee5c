//! Names of Ruby IDs (method names, class path keys) from the VM's global
//! symbol table, `ruby_global_symbols`.
//!
//! Distribution builds strip `.symtab` and do not export that table, so
//! when the symbol is missing it is found through the code of `rb_id2str`,
//! an exported function that reads the table's `last_id` and `ids` members
//! with RIP-relative loads.

use std::collections::HashMap;

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, OpKind};

use crate::memory::RemoteMemory;
use crate::process::RubyBinary;

use super::layout::Layout;
use super::objects::{ObjectError, Objects};

/// Exported functions that read the global symbol table.
const READERS: [&str; 2] = ["rb_id2str", "rb_id2sym"];
/// Instructions decoded per function while looking for the table.
const MAX_INSTRUCTIONS: usize = 96;
/// Serials scanned while looking for a name such as `__classpath__`.
const MAX_SCAN_SERIALS: u64 = 100_000;
/// Names kept in the cache before it is cleared.
const MAX_CACHED_NAMES: usize = 200_000;

/// Lists candidate target addresses of `ruby_global_symbols`, best first:
/// its symbol where present, else addresses found in the code of functions
/// that read it. The caller keeps the first one whose contents check out.
pub fn locate_table(binary: &RubyBinary, layout: &Layout) -> Vec<u64> {
    if let Some(address) = binary.address("ruby_global_symbols") {
        return vec![address];
    }
    let f = &layout.fields;
    let mut candidates = Vec::new();
    for reader in READERS {
        let Some(entry) = binary.image.symbol(reader) else {
            continue;
        };
        let targets = rip_relative_targets(binary, entry, 2, true);
        // The table is where a 4-byte `last_id` is compared and the 8-byte
        // `ids` next to it is loaded. Such a pair at the right distance
        // rarely occurs by chance in these few instructions.
        for &(target, size) in &targets {
            let base = target.wrapping_sub(f.symbols_counter().0);
            let ids = (base.wrapping_add(f.symbols_ids), 8);
            let address = base.wrapping_add(binary.bias);
            if size == 4 && targets.contains(&ids) && !candidates.contains(&address) {
                candidates.push(address);
            }
        }
    }
    candidates
}

/// Reads the newest serial in the table, from `last_id` or, on 4.0, from
/// `next_id`, which is one past it.
fn read_last_id<M: RemoteMemory>(objects: &Objects<M>, table: u64) -> Result<u64, ObjectError> {
    let (offset, counts_next) = objects.layout.fields.symbols_counter();
    let counter = objects.memory.read_u32(table.wrapping_add(offset))? as u64;
    Ok(if counts_next {
        counter.saturating_sub(1)
    } else {
        counter
    })
}

/// Tells whether `table` looks like the global symbol table: a plausible
/// `last_id` and an Array of pages in `ids`.
pub fn check_table<M: RemoteMemory>(objects: &Objects<M>, table: u64) -> bool {
    let f = &objects.layout.fields;
    let Ok(last_id) = read_last_id(objects, table) else {
        return false;
    };
    let Ok(ids) = objects.memory.read_u64(table.wrapping_add(f.symbols_ids)) else {
        return false;
    };
    let pages = objects.array(ids);
    let expected_pages = last_id / objects.layout.constants.ID_ENTRY_UNIT + 1;
    last_id > 0
        && matches!(pages, Ok((len, _)) if len >= expected_pages && len <= expected_pages + 64)
}

/// Exported functions whose first lines read `ruby_current_vm_ptr`
/// (through `GET_VM()`), on the releases that no longer export it (3.3
/// and later).
const VM_READERS: [&str; 3] = ["rb_during_gc", "rb_gc_count", "ruby_vm_at_exit"];

/// Finds the target address of the `ruby_current_vm_ptr` variable: its
/// symbol where exported, else the one data address that several
/// functions known to call `GET_VM()` all refer to. The caller still checks
/// the result by walking the thread list.
pub fn locate_vm_ptr(binary: &RubyBinary) -> Option<u64> {
    if let Some(address) = binary.address("ruby_current_vm_ptr") {
        return Some(address);
    }
    let per_function: Vec<Vec<(u64, usize)>> = VM_READERS
        .iter()
        .filter_map(|name| binary.image.symbol(name))
        .map(|entry| rip_relative_targets(binary, entry, 0, false))
        .collect();
    let first = per_function.first()?;
    let (common, _) = first.iter().find(|(address, _)| {
        let referring = per_function
            .iter()
            .filter(|targets| targets.iter().any(|(a, _)| a == address));
        referring.count() >= 2
    })?;
    Some(common.wrapping_add(binary.bias))
}

/// Collects the link-time addresses and sizes of RIP-relative memory
/// operands in a
/// function and in the functions it calls or jumps to, `max_depth` levels
/// deep. With `past_returns`, decoding goes on after a return or jump for
/// up to [`MAX_INSTRUCTIONS`], which may reach into the next function.
fn rip_relative_targets(
    binary: &RubyBinary,
    entry: u64,
    max_depth: u32,
    past_returns: bool,
) -> Vec<(u64, usize)> {
    let mut targets = Vec::new();
    // Breadth first, so that a function's own tail call is followed
    // before the calls found by decoding past its end.
    let mut queue = std::collections::VecDeque::from([(entry, 0u32)]);
    let mut visited = Vec::new();
    while let Some((start, depth)) = queue.pop_front() {
        if visited.contains(&start) || visited.len() > 16 {
            continue;
        }
        visited.push(start);
        let Some(code) = binary.image.bytes_at(start, MAX_INSTRUCTIONS * 15) else {
            continue;
        };
        let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
        let mut instruction = Instruction::default();
        for _ in 0..MAX_INSTRUCTIONS {
            if !decoder.can_decode() {
                break;
            }
            decoder.decode_out(&mut instruction);
            if instruction.is_ip_rel_memory_operand() {
                let size = instruction.memory_size().size();
                targets.push((instruction.ip_rel_memory_address(), size));
            }
            let branch = instruction.op0_kind() == OpKind::NearBranch64;
            match instruction.flow_control() {
                FlowControl::Call if branch && depth < max_depth => {
                    queue.push_back((instruction.near_branch_target(), depth + 1));
                }
                FlowControl::UnconditionalBranch => {
                    if branch && depth < max_depth {
                        queue.push_back((instruction.near_branch_target(), depth + 1));
                    }
                    if !past_returns {
                        break;
                    }
                }
                // Compilers put early returns before the rest of a
                // function's body, so a reader may go on past them.
                FlowControl::Return | FlowControl::IndirectBranch if !past_returns => break,
                _ => {}
            }
        }
    }
    targets
}

/// Resolves IDs to names, with a cache.
pub struct SymbolTable {
    /// Address of `ruby_global_symbols`, if it was found.
    table: Option<u64>,
    names: HashMap<u64, Option<String>>,
    /// IDs found by name, such as `__classpath__`, once looked up.
    ids_by_name: HashMap<&'static str, Option<u64>>,
}

impl SymbolTable {
    pub fn new(table: Option<u64>) -> Self {
        SymbolTable {
            table,
            names: HashMap::new(),
            ids_by_name: HashMap::new(),
        }
    }

    pub fn is_available(&self) -> bool {
        self.table.is_some()
    }

    /// Returns the serial number of an ID: operator IDs are their own
    /// serial, others keep it above the scope bits.
    fn serial(layout: &Layout, id: u64) -> u64 {
        let c = &layout.constants;
        if id > c.tLAST_OP_ID {
            id >> c.RUBY_ID_SCOPE_SHIFT
        } else {
            id
        }
    }

    /// Returns the name of an ID, or `None` when it cannot be read.
    pub fn name<M: RemoteMemory>(&mut self, objects: &Objects<M>, id: u64) -> Option<String> {
        if let Some(name) = self.names.get(&id) {
            return name.clone();
        }
        let name = self.read_name(objects, id).ok().flatten();
        // A failed read is not cached: it may be a torn read of a table
        // that is growing.
        if name.is_some() {
            if self.names.len() >= MAX_CACHED_NAMES {
                self.names.clear();
            }
            self.names.insert(id, name.clone());
        }
        name
    }

    fn read_name<M: RemoteMemory>(
        &self,
        objects: &Objects<M>,
        id: u64,
    ) -> Result<Option<String>, ObjectError> {
        let Some(table) = self.table else {
            return Ok(None);
        };
        let layout = objects.layout;
        let serial = Self::serial(layout, id);
        let Some(page) = self.page(objects, table, serial)? else {
            return Ok(None);
        };
        let c = &layout.constants;
        let index = (serial % c.ID_ENTRY_UNIT) * c.ID_ENTRY_SIZE + c.ID_ENTRY_STR;
        match objects.array_entry(page, index)? {
            Some(string) if objects.is_heap_object(string) => Ok(Some(objects.string(string)?)),
            _ => Ok(None),
        }
    }

    /// Returns the page array that contains `serial`, or `None` past the end.
    fn page<M: RemoteMemory>(
        &self,
        objects: &Objects<M>,
        table: u64,
        serial: u64,
    ) -> Result<Option<u64>, ObjectError> {
        let f = &objects.layout.fields;
        let last_id = read_last_id(objects, table)?;
        if serial == 0 || serial > last_id {
            return Ok(None);
        }
        let ids = objects.memory.read_u64(table + f.symbols_ids)?;
        let page_index = serial / objects.layout.constants.ID_ENTRY_UNIT;
        Ok(objects
            .array_entry(ids, page_index)?
            .filter(|&page| objects.is_heap_object(page)))
    }

    /// Finds the ID whose name is `wanted` by scanning the table from the
    /// first serial. Meant for names interned while the VM boots, such as
    /// `__classpath__`, which sit in the first pages.
    pub fn find_id<M: RemoteMemory>(
        &mut self,
        objects: &Objects<M>,
        wanted: &'static str,
    ) -> Option<u64> {
        if let Some(&found) = self.ids_by_name.get(wanted) {
            return found;
        }
        let found = self.scan_for(objects, wanted).ok().flatten();
        self.ids_by_name.insert(wanted, found);
        found
    }

    fn scan_for<M: RemoteMemory>(
        &self,
        objects: &Objects<M>,
        wanted: &str,
    ) -> Result<Option<u64>, ObjectError> {
        let Some(table) = self.table else {
            return Ok(None);
        };
        let layout = objects.layout;
        let c = &layout.constants;
        let last_id = read_last_id(objects, table)?;
        let mut page_index = u64::MAX;
        let mut page_entries = Vec::new();
        for serial in 1..=last_id.min(MAX_SCAN_SERIALS) {
            if serial / c.ID_ENTRY_UNIT != page_index {
                page_index = serial / c.ID_ENTRY_UNIT;
                page_entries.clear();
                if let Some(page) = self.page(objects, table, serial)? {
                    let (len, elements) = objects.array(page)?;
                    let bytes = objects.memory.read_vec(elements, (len * 8) as usize)?;
                    page_entries = bytes
                        .chunks_exact(8)
                        .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])))
                        .collect();
                }
            }
            let index = ((serial % c.ID_ENTRY_UNIT) * c.ID_ENTRY_SIZE + c.ID_ENTRY_STR) as usize;
            let Some(&string) = page_entries.get(index) else {
                continue;
            };
            if !objects.is_heap_object(string) {
                continue;
            }
            if objects.string(string).ok().as_deref() == Some(wanted) {
                // An ID keeps the scope bits below the serial; internal
                // names like `__classpath__` are local-scope IDs (scope 0)
                // interned as static symbols.
                return Ok(Some(self.id_for_serial(
                    objects,
                    page_entries.get(index + 1).copied(),
                    serial,
                )));
            }
        }
        Ok(None)
    }

    /// Rebuilds the ID of a serial from its Symbol, whose static form
    /// carries the ID in its upper bits.
    fn id_for_serial<M: RemoteMemory>(
        &self,
        objects: &Objects<M>,
        symbol: Option<u64>,
        serial: u64,
    ) -> u64 {
        let c = &objects.layout.constants;
        // Static symbols are immediates: `(id << RUBY_SPECIAL_SHIFT) | 0x0c`
        // on 64-bit builds, with RUBY_SPECIAL_SHIFT = 8.
        match symbol {
            Some(sym) if sym & 0xff == 0x0c => sym >> 8,
            _ => serial << c.RUBY_ID_SCOPE_SHIFT,
        }
    }
}
