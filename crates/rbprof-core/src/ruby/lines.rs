//! Line numbers from an instruction sequence's position table.
//!
//! Each `iseq_insn_info_entry` covers the instructions from its start
//! position to the next entry's. While an iseq is compiled, the start
//! positions are in `insns_info.positions`. From Ruby 2.6 the compiler then
//! frees that array and keeps only a succinct bit vector
//! (`succ_index_table`). Its rank query returns how many entries start at or
//! before a position. Ruby 2.5 has neither and keeps each entry's start in
//! the entry itself (`iseq_insn_info_entry.position`).

use crate::memory::{u32_at, u64_at, MemoryError, RemoteMemory};

/// Entries of the immediate part of a succinct table: ranks of the first
/// 54 positions, 7 bits each, 9 to a u64. Defined in iseq.c (not a header),
/// and unchanged from Ruby 2.6 through 4.0.
const IMMEDIATE_TABLE_SIZE: u64 = 54;
/// Offset of `succ_part` in `struct succ_index_table`: after
/// `uint64_t imm_part[54 / 9]`.
const SUCC_PART_OFFSET: u64 = 48;
/// Size of `struct succ_dict_block`: `unsigned int rank` padded to 8,
/// `uint64_t small_block_ranks`, `uint64_t bits[8]`.
const SUCC_BLOCK_SIZE: u64 = 80;
/// Maximum entries of a position table; larger ones are rejected.
const MAX_INSN_INFO: u64 = 1 << 22;

/// Location and shape of an iseq's position table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineTable {
    /// `insns_info.body`: array of `iseq_insn_info_entry`.
    pub entries: u64,
    /// `insns_info.size`: number of entries.
    pub size: u64,
    /// `insns_info.positions`, while the iseq still has it.
    pub positions: u64,
    /// `insns_info.succ_index_table`, once built.
    pub succ_index_table: u64,
    /// `iseq_size`: length of the instruction array, in VALUEs.
    pub iseq_size: u64,
    pub entry_size: u64,
    pub line_offset: u64,
    /// Offset of `position` in an entry, in 2.5, whose entries keep their
    /// own start position.
    pub position_offset: Option<u64>,
}

/// Computes the rank of position `pos` in a succinct table: the number of
/// entries that start at or before `pos`.
fn succ_rank<M: RemoteMemory>(memory: &M, table: u64, pos: u64) -> Result<u64, MemoryError> {
    if pos < IMMEDIATE_TABLE_SIZE {
        let word = memory.read_u64(table.wrapping_add((pos / 9) * 8))?;
        return Ok((word >> ((pos % 9) * 7)) & 0x7f);
    }
    let bit_index = pos - IMMEDIATE_TABLE_SIZE;
    let block = table
        .wrapping_add(SUCC_PART_OFFSET)
        .wrapping_add((bit_index / 512) * SUCC_BLOCK_SIZE);
    let bytes = memory.read_vec(block, SUCC_BLOCK_SIZE as usize)?;
    let rank = u64_at(&bytes, 0) & 0xffff_ffff;
    let small_ranks = u64_at(&bytes, 8);
    let in_block = bit_index % 512;
    let small_index = in_block / 64;
    let small_rank = if small_index == 0 {
        0
    } else {
        (small_ranks >> ((small_index - 1) * 9)) & 0x1ff
    };
    let bits = u64_at(&bytes, 16 + small_index * 8);
    let below = (bits << (63 - in_block % 64)).count_ones() as u64;
    Ok(rank + small_rank + below)
}

impl LineTable {
    /// Returns the line of the instruction at `pos`, or `None` when the
    /// table is empty or inconsistent.
    pub fn line_at<M: RemoteMemory>(
        &self,
        memory: &M,
        pos: u64,
    ) -> Result<Option<u32>, MemoryError> {
        if self.size == 0 || self.size > MAX_INSN_INFO || self.entries == 0 {
            return Ok(None);
        }
        let pos = pos.min(self.iseq_size);
        let index = if self.size == 1 {
            0
        } else if self.succ_index_table != 0 {
            let rank = succ_rank(memory, self.succ_index_table, pos)?;
            if rank == 0 || rank > self.size {
                return Ok(None);
            }
            rank - 1
        } else if self.positions != 0 {
            self.search_positions(memory, pos)?
        } else if let Some(position_offset) = self.position_offset {
            self.search_entries(memory, pos, position_offset)?
        } else {
            return Ok(None);
        };
        let line = memory.read_u32(
            self.entries
                .wrapping_add(index * self.entry_size)
                .wrapping_add(self.line_offset),
        )?;
        Ok(Some(line))
    }

    /// Finds the last entry whose start position is at or before `pos`.
    fn search_positions<M: RemoteMemory>(&self, memory: &M, pos: u64) -> Result<u64, MemoryError> {
        let bytes = memory.read_vec(self.positions, (self.size * 4) as usize)?;
        let starts = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as u64);
        let mut index = 0;
        for (i, start) in starts.enumerate() {
            if start > pos {
                break;
            }
            index = i as u64;
        }
        Ok(index)
    }

    /// Finds the last entry whose own start position is at or before
    /// `pos`, in tables whose entries carry their start (2.5).
    fn search_entries<M: RemoteMemory>(
        &self,
        memory: &M,
        pos: u64,
        position_offset: u64,
    ) -> Result<u64, MemoryError> {
        let bytes = memory.read_vec(self.entries, (self.size * self.entry_size) as usize)?;
        let mut index = 0;
        for i in 0..self.size {
            let start = u32_at(&bytes, i * self.entry_size + position_offset) as u64;
            if start > pos {
                break;
            }
            index = i;
        }
        Ok(index)
    }
}

/// Returns the position whose line a frame reports: the instruction before
/// `pc`, because the VM advances `pc` past an instruction when it starts
/// executing it. For callers that instruction is the call itself.
pub fn position_of(pc: u64, iseq_encoded: u64) -> Option<u64> {
    if pc < iseq_encoded {
        return None;
    }
    let offset = (pc - iseq_encoded) / 8;
    Some(offset.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::ReplayMemory;

    /// Builds a succinct table the way the VM does, for start positions
    /// `starts` (sorted), so the rank query can be checked against a
    /// direct count.
    fn build_table(starts: &[u64], max_pos: u64) -> Vec<u8> {
        let blocks = if max_pos < IMMEDIATE_TABLE_SIZE {
            0
        } else {
            (max_pos - IMMEDIATE_TABLE_SIZE).div_ceil(512) + 1
        };
        let mut bytes = vec![0u8; (SUCC_PART_OFFSET + blocks * SUCC_BLOCK_SIZE) as usize];
        let count_upto = |x: u64| starts.iter().filter(|&&s| s <= x).count() as u64;
        for pos in 0..IMMEDIATE_TABLE_SIZE {
            let word = (pos / 9) as usize * 8;
            let mut value = u64::from_le_bytes(bytes[word..word + 8].try_into().unwrap());
            value |= count_upto(pos) << ((pos % 9) * 7);
            bytes[word..word + 8].copy_from_slice(&value.to_le_bytes());
        }
        for block in 0..blocks {
            let base = (SUCC_PART_OFFSET + block * SUCC_BLOCK_SIZE) as usize;
            let first = IMMEDIATE_TABLE_SIZE + block * 512;
            let rank = if first == 0 { 0 } else { count_upto(first - 1) };
            bytes[base..base + 4].copy_from_slice(&(rank as u32).to_le_bytes());
            let mut small_ranks = 0u64;
            let mut running = 0u64;
            for small in 0..8u64 {
                if small > 0 {
                    small_ranks |= running << ((small - 1) * 9);
                }
                let mut bits = 0u64;
                for bit in 0..64u64 {
                    if starts.contains(&(first + small * 64 + bit)) {
                        bits |= 1 << bit;
                    }
                }
                running += bits.count_ones() as u64;
                let at = base + 16 + small as usize * 8;
                bytes[at..at + 8].copy_from_slice(&bits.to_le_bytes());
            }
            bytes[base + 8..base + 16].copy_from_slice(&small_ranks.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn succinct_rank_matches_direct_count() {
        let starts: Vec<u64> = vec![0, 3, 7, 20, 53, 54, 60, 130, 565, 566, 700, 1200];
        let table = build_table(&starts, 1300);
        let mut memory = ReplayMemory::default();
        memory.insert(0x10000, table);
        for pos in 0..1300 {
            let expected = starts.iter().filter(|&&s| s <= pos).count() as u64;
            assert_eq!(
                succ_rank(&memory, 0x10000, pos).unwrap(),
                expected,
                "pos {pos}"
            );
        }
    }

    #[test]
    fn line_from_succinct_table() {
        let starts = [0u64, 4, 9];
        let mut memory = ReplayMemory::default();
        memory.insert(0x10000, build_table(&starts, 12));
        // Entries of 12 bytes: line_no, node_id, events.
        let mut entries = Vec::new();
        for line in [10u32, 11, 15] {
            entries.extend_from_slice(&line.to_le_bytes());
            entries.extend_from_slice(&[0u8; 8]);
        }
        memory.insert(0x20000, entries);
        let table = LineTable {
            entries: 0x20000,
            size: 3,
            positions: 0,
            succ_index_table: 0x10000,
            iseq_size: 12,
            entry_size: 12,
            line_offset: 0,
            position_offset: None,
        };
        assert_eq!(table.line_at(&memory, 0).unwrap(), Some(10));
        assert_eq!(table.line_at(&memory, 5).unwrap(), Some(11));
        assert_eq!(table.line_at(&memory, 11).unwrap(), Some(15));
    }

    #[test]
    fn line_from_entry_positions() {
        // Ruby 2.5's entries of 12 bytes: position, line_no, events.
        let mut memory = ReplayMemory::default();
        let mut entries = Vec::new();
        for (start, line) in [(0u32, 10u32), (4, 11), (9, 15)] {
            entries.extend_from_slice(&start.to_le_bytes());
            entries.extend_from_slice(&line.to_le_bytes());
            entries.extend_from_slice(&[0u8; 4]);
        }
        memory.insert(0x20000, entries);
        let table = LineTable {
            entries: 0x20000,
            size: 3,
            positions: 0,
            succ_index_table: 0,
            iseq_size: 12,
            entry_size: 12,
            line_offset: 4,
            position_offset: Some(0),
        };
        let expected = [(0, 10), (3, 10), (4, 11), (8, 11), (9, 15), (11, 15)];
        for (pos, line) in expected {
            assert_eq!(
                table.line_at(&memory, pos).unwrap(),
                Some(line),
                "pos {pos}"
            );
        }
        // Past the end of the instructions, the last entry still applies.
        assert_eq!(table.line_at(&memory, 40).unwrap(), Some(15));
    }

    #[test]
    fn line_needs_some_position_source() {
        let mut memory = ReplayMemory::default();
        memory.insert(0x20000, vec![0u8; 24]);
        let table = LineTable {
            entries: 0x20000,
            size: 2,
            positions: 0,
            succ_index_table: 0,
            iseq_size: 8,
            entry_size: 12,
            line_offset: 4,
            position_offset: None,
        };
        assert_eq!(table.line_at(&memory, 3).unwrap(), None);
    }

    #[test]
    fn position_is_instruction_before_pc() {
        assert_eq!(position_of(0x1010, 0x1000), Some(1));
        assert_eq!(position_of(0x1000, 0x1000), Some(0));
        assert_eq!(position_of(0x0ff8, 0x1000), None);
    }
}
