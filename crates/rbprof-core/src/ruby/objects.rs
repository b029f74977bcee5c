//! Reading Ruby objects (strings, arrays, class instance variables) from
//! the target, with every length bounded and every type checked first.

use crate::memory::{u64_at, MemoryError, RemoteMemory};

use super::layout::Layout;

/// Maximum bytes read of one string (labels, paths, names).
pub const MAX_STRING: u64 = 4096;
/// The largest array length accepted from the target.
pub const MAX_ARRAY: u64 = 1 << 20;
/// The smallest heap slot on 64-bit Ruby (`sizeof(RVALUE)`): a read of
/// this many bytes from an object's start stays inside its slot.
const OBJECT_SLOT: usize = 40;
/// Maximum entries scanned in a class's instance variable table.
const MAX_IV_ENTRIES: u64 = 4096;

/// Cause of a failed object read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("object at {addr:#x} has type {found:#x}, expected {expected}")]
    WrongType {
        addr: u64,
        found: u64,
        expected: &'static str,
    },
    #[error("{what} at {addr:#x} has implausible value {value}")]
    Implausible {
        what: &'static str,
        addr: u64,
        value: u64,
    },
}

/// Reads objects of the target with one version's layout.
pub struct Objects<'a, M: RemoteMemory> {
    pub memory: &'a M,
    pub layout: &'a Layout,
}

impl<'a, M: RemoteMemory> Objects<'a, M> {
    pub fn new(memory: &'a M, layout: &'a Layout) -> Self {
        Objects { memory, layout }
    }

    /// Tells whether a VALUE is a pointer to a heap object, not an
    /// immediate (fixnum, symbol, flonum, nil, true, false, undef).
    pub fn is_heap_object(&self, value: u64) -> bool {
        let c = &self.layout.constants;
        // Immediates have one of the low three bits set; the special
        // constants below 0x40 are all immediates or false/nil/undef.
        value & 0x7 == 0
            && value != c.Qfalse
            && value != c.Qnil
            && value != c.Qundef
            && value > 0x1000
    }

    /// Reads the flags word of a heap object.
    pub fn flags(&self, value: u64) -> Result<u64, ObjectError> {
        Ok(self
            .memory
            .read_u64(value.wrapping_add(self.layout.fields.basic_flags))?)
    }

    /// Returns the built-in type (`T_STRING`...) from a flags word.
    pub fn builtin_type(&self, flags: u64) -> u64 {
        flags & self.layout.constants.RUBY_T_MASK
    }

    /// Returns the imemo type of an object, or `None` when it is not an
    /// imemo.
    pub fn imemo_type(&self, value: u64) -> Result<Option<u64>, ObjectError> {
        if !self.is_heap_object(value) {
            return Ok(None);
        }
        Ok(self.imemo_type_of(self.flags(value)?))
    }

    /// Returns the imemo type that a flags word gives, or `None` when the
    /// flags are not those of an imemo.
    pub fn imemo_type_of(&self, flags: u64) -> Option<u64> {
        let c = &self.layout.constants;
        if self.builtin_type(flags) != c.RUBY_T_IMEMO {
            return None;
        }
        Some((flags >> c.RUBY_FL_USHIFT) & c.IMEMO_MASK)
    }

    fn expect_type(
        &self,
        value: u64,
        flags: u64,
        expected_type: u64,
        expected: &'static str,
    ) -> Result<(), ObjectError> {
        let found = self.builtin_type(flags);
        if found != expected_type {
            return Err(ObjectError::WrongType {
                addr: value,
                found,
                expected,
            });
        }
        Ok(())
    }

    /// Reads a String object, cut to [`MAX_STRING`] bytes, as UTF-8 with
    /// invalid bytes replaced.
    pub fn string(&self, value: u64) -> Result<String, ObjectError> {
        if !self.is_heap_object(value) {
            return Err(ObjectError::WrongType {
                addr: value,
                found: value,
                expected: "String",
            });
        }
        let f = &self.layout.fields;
        let c = &self.layout.constants;
        // One read covers the header of every layout: flags, klass and the
        // length and pointer fields.
        let header = self.memory.read_vec(value, OBJECT_SLOT)?;
        let flags = u64_at(&header, f.basic_flags);
        self.expect_type(value, flags, c.RUBY_T_STRING, "String")?;

        let embedded = flags & c.RSTRING_NOEMBED == 0;
        let len = if let Some(offset) = f.string_len {
            u64_at(&header, offset)
        } else if !embedded {
            u64_at(&header, f.string_heap_len.unwrap_or(16))
        } else if let Some(offset) = f.string_embed_len {
            u64_at(&header, offset)
        } else {
            let mask = c.RSTRING_EMBED_LEN_MASK.unwrap_or(0);
            let shift = c.RSTRING_EMBED_LEN_SHIFT.unwrap_or(0);
            (flags & mask) >> shift
        };
        if len > 1 << 30 {
            return Err(ObjectError::Implausible {
                what: "string length",
                addr: value,
                value: len,
            });
        }
        let len = len.min(MAX_STRING);
        let bytes = if embedded {
            self.memory
                .read_vec(value.wrapping_add(f.string_embed_ary), len as usize)?
        } else {
            let ptr = u64_at(&header, f.string_heap_ptr);
            self.memory.read_vec(ptr, len as usize)?
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Returns the length and the address of the elements of an Array.
    pub fn array(&self, value: u64) -> Result<(u64, u64), ObjectError> {
        if !self.is_heap_object(value) {
            return Err(ObjectError::WrongType {
                addr: value,
                found: value,
                expected: "Array",
            });
        }
        let f = &self.layout.fields;
        let c = &self.layout.constants;
        let header = self.memory.read_vec(value, OBJECT_SLOT)?;
        let flags = u64_at(&header, f.basic_flags);
        self.expect_type(value, flags, c.RUBY_T_ARRAY, "Array")?;
        let (len, elements) = if flags & c.RARRAY_EMBED_FLAG != 0 {
            let len = (flags & c.RARRAY_EMBED_LEN_MASK) >> c.RARRAY_EMBED_LEN_SHIFT;
            (len, value.wrapping_add(f.array_embed_ary))
        } else {
            (
                u64_at(&header, f.array_heap_len),
                u64_at(&header, f.array_heap_ptr),
            )
        };
        if len > MAX_ARRAY {
            return Err(ObjectError::Implausible {
                what: "array length",
                addr: value,
                value: len,
            });
        }
        Ok((len, elements))
    }

    /// Reads element `index` of an Array, or `None` past its end.
    pub fn array_entry(&self, value: u64, index: u64) -> Result<Option<u64>, ObjectError> {
        let (len, elements) = self.array(value)?;
        if index >= len {
            return Ok(None);
        }
        Ok(Some(
            self.memory.read_u64(elements.wrapping_add(index * 8))?,
        ))
    }

    /// Looks up an instance variable of a class or module by ID, in the
    /// `iv_tbl` st_table of Ruby versions that keep class ivars there.
    pub fn class_ivar(&self, class: u64, id: u64) -> Result<Option<u64>, ObjectError> {
        let f = &self.layout.fields;
        let (Some(class_ptr), Some(iv_tbl)) = (f.class_ptr, f.classext_iv_tbl) else {
            return Ok(None);
        };
        let ext = self.memory.read_u64(class.wrapping_add(class_ptr))?;
        if ext == 0 {
            return Ok(None);
        }
        let table = self.memory.read_u64(ext.wrapping_add(iv_tbl))?;
        if table == 0 {
            return Ok(None);
        }
        self.st_lookup(table, id)
    }

    /// Finds `key` in an st_table by scanning its entries array, which
    /// every st_table has whether or not it also has hash bins.
    fn st_lookup(&self, table: u64, key: u64) -> Result<Option<u64>, ObjectError> {
        let f = &self.layout.fields;
        let entry_size = self.layout.sizes.st_table_entry;
        let start = self
            .memory
            .read_u64(table.wrapping_add(f.st_entries_start))?;
        let bound = self
            .memory
            .read_u64(table.wrapping_add(f.st_entries_bound))?;
        let entries = self.memory.read_u64(table.wrapping_add(f.st_entries))?;
        if bound < start || bound - start > MAX_IV_ENTRIES || entries == 0 {
            return Err(ObjectError::Implausible {
                what: "st_table entry count",
                addr: table,
                value: bound.wrapping_sub(start),
            });
        }
        let count = bound - start;
        let bytes = self.memory.read_vec(
            entries.wrapping_add(start.wrapping_mul(entry_size)),
            (count * entry_size) as usize,
        )?;
        for i in 0..count {
            let base = i * entry_size;
            if u64_at(&bytes, base + f.st_entry_key) == key {
                return Ok(Some(u64_at(&bytes, base + f.st_entry_record)));
            }
        }
        Ok(None)
    }
}
