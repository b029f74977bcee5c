//! Whether the VM is collecting garbage, for the `(garbage collection)`
//! frame.
//!
//! The flag is a bitfield of the GC's private `rb_objspace` struct, defined
//! in gc.c (gc/default.c from 3.4), which Ruby's headers do not show. The
//! exported `rb_during_gc` reads exactly that bit, so its machine code
//! gives the location: on every release from 2.7 to 3.4 it loads the VM,
//! then `vm->objspace`, then one byte of the objspace, and shifts and masks
//! it.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

use crate::memory::RemoteMemory;
use crate::process::RubyBinary;

/// Instructions of `rb_during_gc` decoded at most.
const MAX_INSTRUCTIONS: usize = 24;

/// Location of the "during GC" bit, relative to the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcFlag {
    /// Offset of the objspace pointer in `rb_vm_t`.
    pub objspace_offset: u64,
    /// Offset of the byte that contains the bit in the objspace.
    pub byte_offset: u64,
    /// Position of the bit in that byte.
    pub bit: u32,
}

impl GcFlag {
    /// Finds the flag from the code of the exported `rb_during_gc`.
    pub fn locate(binary: &RubyBinary) -> Option<GcFlag> {
        let entry = binary.image.symbol("rb_during_gc")?;
        let code = binary.image.bytes_at(entry, MAX_INSTRUCTIONS * 15)?;
        Self::from_code(code, entry)
    }

    /// Reads the pattern `mov r, [r + objspace]; movzx r, byte [r + byte];
    /// shr r, bit; and r, 1` up to the first return.
    pub fn from_code(code: &[u8], ip: u64) -> Option<GcFlag> {
        let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
        let mut instruction = Instruction::default();
        let mut pointer_loads = Vec::new();
        let mut byte_load = None;
        let mut shift = 0u32;
        let mut masked = false;
        for _ in 0..MAX_INSTRUCTIONS {
            if !decoder.can_decode() {
                break;
            }
            decoder.decode_out(&mut instruction);
            let from_register = instruction.op_count() == 2
                && instruction.op1_kind() == OpKind::Memory
                && instruction.memory_base() != Register::RIP
                && instruction.memory_base() != Register::None
                && instruction.memory_index() == Register::None;
            match instruction.mnemonic() {
                Mnemonic::Mov if from_register && instruction.memory_size().size() == 8 => {
                    pointer_loads.push(instruction.memory_displacement64());
                }
                Mnemonic::Movzx if from_register && instruction.memory_size().size() == 1 => {
                    byte_load = Some(instruction.memory_displacement64());
                }
                Mnemonic::Shr
                    if byte_load.is_some() && instruction.op1_kind() == OpKind::Immediate8 =>
                {
                    shift = instruction.immediate8() as u32;
                }
                Mnemonic::And
                    if byte_load.is_some() && instruction.op1_kind() != OpKind::Register =>
                {
                    masked = instruction.immediate32() == 1;
                }
                Mnemonic::Ret => break,
                _ => {}
            }
        }
        // The last pointer load before the byte is `vm->objspace`; an
        // earlier one with displacement 0 dereferences the VM pointer.
        let objspace_offset = *pointer_loads.iter().rev().find(|&&d| d != 0)?;
        let byte_offset = byte_load?;
        if !masked || shift >= 8 || objspace_offset > 1 << 16 || byte_offset > 1 << 12 {
            return None;
        }
        Some(GcFlag {
            objspace_offset,
            byte_offset,
            bit: shift,
        })
    }

    /// Tells whether the VM at `vm` is collecting garbage.
    pub fn during_gc<M: RemoteMemory>(&self, memory: &M, vm: u64) -> Option<bool> {
        let objspace = memory
            .read_u64(vm.wrapping_add(self.objspace_offset))
            .ok()?;
        if objspace == 0 {
            return None;
        }
        let mut byte = [0u8; 1];
        memory
            .read(objspace.wrapping_add(self.byte_offset), &mut byte)
            .ok()?;
        Some((byte[0] >> self.bit) & 1 == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rb_during_gc` of Debian's libruby 3.1.2.
    const RUBY_3_1: &[u8] = &[
        0x48, 0x8b, 0x05, 0xa1, 0xf7, 0x2d, 0x00, // mov rax, [rip+...]
        0x48, 0x8b, 0x00, // mov rax, [rax]
        0x48, 0x8b, 0x80, 0x50, 0x04, 0x00, 0x00, // mov rax, [rax+0x450]
        0x0f, 0xb6, 0x40, 0x10, // movzx eax, byte [rax+0x10]
        0xc0, 0xe8, 0x05, // shr al, 5
        0x83, 0xe0, 0x01, // and eax, 1
        0xc3, // ret
    ];

    /// `rb_during_gc` of Debian's libruby 3.4.11, which checks the VM
    /// pointer for null first.
    const RUBY_3_4: &[u8] = &[
        0xf3, 0x0f, 0x1e, 0xfa, // endbr64
        0x48, 0x8d, 0x05, 0x85, 0xc3, 0x3d, 0x00, // lea rax, [rip+...]
        0x48, 0x8b, 0x00, // mov rax, [rax]
        0x48, 0x85, 0xc0, // test rax, rax
        0x74, 0x15, // je +0x15
        0x48, 0x8b, 0x80, 0x10, 0x05, 0x00, 0x00, // mov rax, [rax+0x510]
        0x0f, 0xb6, 0x40, 0x14, // movzx eax, byte [rax+0x14]
        0xc0, 0xe8, 0x05, // shr al, 5
        0x83, 0xe0, 0x01, // and eax, 1
        0xc3, // ret
    ];

    #[test]
    fn flag_from_ruby_3_1_code() {
        let flag = GcFlag::from_code(RUBY_3_1, 0xcf4e0).unwrap();
        assert_eq!(
            flag,
            GcFlag {
                objspace_offset: 0x450,
                byte_offset: 0x10,
                bit: 5
            }
        );
    }

    #[test]
    fn flag_from_ruby_3_4_code() {
        let flag = GcFlag::from_code(RUBY_3_4, 0x110720).unwrap();
        assert_eq!(flag.objspace_offset, 0x510);
        assert_eq!(flag.byte_offset, 0x14);
        assert_eq!(flag.bit, 5);
    }

    #[test]
    fn unrelated_code_gives_nothing() {
        assert_eq!(GcFlag::from_code(&[0x31, 0xc0, 0xc3], 0), None);
        assert_eq!(GcFlag::from_code(&[], 0), None);
    }
}
