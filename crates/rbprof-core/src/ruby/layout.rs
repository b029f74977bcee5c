//! Struct layouts of each supported Ruby version, loaded from the table
//! that `tools/layoutgen` generates from Ruby's own headers.
//!
//! Keys are C member designators as `offsetof` takes them
//! (`rb_vm_t.ractor.main_ractor`), so a key reads the same here, in the
//! generator's probe and in Ruby's source. A field that only some versions
//! have is an `Option`; the walker picks its strategy from which are set.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The generated table, embedded at build time.
const TABLE_JSON: &str = include_str!("../../layouts/ruby.json");

impl Fields {
    /// Returns where the symbol table's serial counter is and whether it
    /// counts one past the newest serial (`next_id`, 4.0) rather than the
    /// newest (`last_id`). Every layout has one of the two, which a test
    /// checks.
    pub fn symbols_counter(&self) -> (u64, bool) {
        match (self.symbols_last_id, self.symbols_next_id) {
            (Some(offset), _) => (offset, false),
            (None, Some(offset)) => (offset, true),
            (None, None) => (0, false),
        }
    }
}

/// Byte position of a C bitfield: `(word >> shift) & ((1 << width) - 1)`
/// where `word` is the little-endian u32 at `offset`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Bitfield {
    pub offset: u64,
    pub shift: u32,
    pub width: u32,
}

impl Bitfield {
    /// Extracts the field from the four bytes at `offset`.
    pub fn extract(&self, word: u32) -> u32 {
        let mask = if self.width >= 32 {
            u32::MAX
        } else {
            (1u32 << self.width) - 1
        };
        (word >> self.shift) & mask
    }
}

/// Member offsets, in bytes from the start of the struct.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    // The VM's thread list before ractors (2.5 to 2.7).
    /// The main thread, in 2.5 to 2.7; versions with ractors keep it in
    /// `ractor.main_thread`.
    #[serde(rename = "rb_vm_t.main_thread")]
    pub vm_main_thread_before_ractors: Option<u64>,
    /// The list of living threads, linked through `rb_thread_t.vmlt_node`
    /// (2.5 to 2.7).
    #[serde(rename = "rb_vm_t.living_threads")]
    pub vm_living_threads: Option<u64>,
    /// The number of threads in `living_threads` (2.5 to 2.7).
    #[serde(rename = "rb_vm_t.living_thread_num")]
    pub vm_living_thread_num: Option<u64>,

    // The VM and its ractors (3.0 and later).
    #[serde(rename = "rb_vm_t.ractor.set")]
    pub vm_ractor_set: Option<u64>,
    #[serde(rename = "rb_vm_t.ractor.cnt")]
    pub vm_ractor_cnt: Option<u64>,
    #[serde(rename = "rb_vm_t.ractor.main_ractor")]
    pub vm_main_ractor: Option<u64>,
    #[serde(rename = "rb_vm_t.ractor.main_thread")]
    pub vm_main_thread: Option<u64>,
    #[serde(rename = "rb_ractor_t.vmlr_node")]
    pub ractor_vmlr_node: Option<u64>,
    #[serde(rename = "rb_ractor_t.threads.set")]
    pub ractor_threads_set: Option<u64>,
    #[serde(rename = "rb_ractor_t.threads.cnt")]
    pub ractor_threads_cnt: Option<u64>,
    #[serde(rename = "rb_ractor_t.threads.running_ec")]
    pub ractor_running_ec: Option<u64>,
    #[serde(rename = "rb_ractor_t.threads.main")]
    pub ractor_main_thread: Option<u64>,

    // Threads.
    /// The node in `rb_vm_t.living_threads` (2.5 to 2.7).
    #[serde(rename = "rb_thread_t.vmlt_node")]
    pub thread_vmlt_node: Option<u64>,
    #[serde(rename = "rb_thread_t.lt_node")]
    pub thread_lt_node: Option<u64>,
    #[serde(rename = "rb_thread_t.self")]
    pub thread_self: u64,
    #[serde(rename = "rb_thread_t.ractor")]
    pub thread_ractor: Option<u64>,
    #[serde(rename = "rb_thread_t.ec")]
    pub thread_ec: u64,
    /// The pthread id, in 2.5 to 3.1. 3.2 and later keep it in
    /// `rb_native_thread.thread_id`.
    #[serde(rename = "rb_thread_t.thread_id")]
    pub thread_thread_id: Option<u64>,
    /// The kernel thread id, on builds that define RB_THREAD_T_HAS_NATIVE_ID.
    #[serde(rename = "rb_thread_t.tid")]
    pub thread_tid: Option<u64>,
    /// The pointer to the native thread, from 3.2.
    #[serde(rename = "rb_thread_t.nt")]
    pub thread_nt: Option<u64>,
    /// The pthread id in the native thread, from 3.2.
    #[serde(rename = "rb_native_thread.thread_id")]
    pub native_thread_thread_id: Option<u64>,
    /// The kernel thread id in the native thread, from 3.2 on builds that
    /// define RB_THREAD_T_HAS_NATIVE_ID.
    #[serde(rename = "rb_native_thread.tid")]
    pub native_thread_tid: Option<u64>,
    #[serde(rename = "rb_thread_t.name")]
    pub thread_name: u64,

    // Execution contexts and control frames.
    #[serde(rename = "rb_execution_context_t.vm_stack")]
    pub ec_vm_stack: u64,
    #[serde(rename = "rb_execution_context_t.vm_stack_size")]
    pub ec_vm_stack_size: u64,
    #[serde(rename = "rb_execution_context_t.cfp")]
    pub ec_cfp: u64,
    #[serde(rename = "rb_execution_context_t.thread_ptr")]
    pub ec_thread_ptr: Option<u64>,
    #[serde(rename = "rb_control_frame_t.pc")]
    pub cfp_pc: u64,
    #[serde(rename = "rb_control_frame_t.sp")]
    pub cfp_sp: u64,
    #[serde(rename = "rb_control_frame_t.iseq")]
    pub cfp_iseq: u64,
    #[serde(rename = "rb_control_frame_t.self")]
    pub cfp_self: u64,
    #[serde(rename = "rb_control_frame_t.ep")]
    pub cfp_ep: u64,

    // Instruction sequences.
    #[serde(rename = "rb_iseq_t.flags")]
    pub iseq_flags: u64,
    #[serde(rename = "rb_iseq_t.body")]
    pub iseq_body: u64,
    #[serde(rename = "rb_iseq_constant_body.type")]
    pub body_type: u64,
    #[serde(rename = "rb_iseq_constant_body.iseq_size")]
    pub body_iseq_size: u64,
    #[serde(rename = "rb_iseq_constant_body.iseq_encoded")]
    pub body_iseq_encoded: u64,
    #[serde(rename = "rb_iseq_constant_body.location.pathobj")]
    pub body_pathobj: u64,
    #[serde(rename = "rb_iseq_constant_body.location.base_label")]
    pub body_base_label: u64,
    #[serde(rename = "rb_iseq_constant_body.location.label")]
    pub body_label: u64,
    #[serde(rename = "rb_iseq_constant_body.location.first_lineno")]
    pub body_first_lineno: u64,
    /// The array of `iseq_insn_info_entry`. 2.5 has no `insns_info`
    /// struct and keeps the pointer in `insns_info` itself, which the alias
    /// accepts.
    #[serde(
        rename = "rb_iseq_constant_body.insns_info.body",
        alias = "rb_iseq_constant_body.insns_info"
    )]
    pub body_insns_info_body: u64,
    /// The start positions of the entries, from 2.6 until the succinct
    /// table replaces them. 2.5 keeps each start in
    /// `iseq_insn_info_entry.position`.
    #[serde(rename = "rb_iseq_constant_body.insns_info.positions")]
    pub body_insns_info_positions: Option<u64>,
    /// The number of entries; `insns_info_size` in 2.5, which the alias
    /// accepts.
    #[serde(
        rename = "rb_iseq_constant_body.insns_info.size",
        alias = "rb_iseq_constant_body.insns_info_size"
    )]
    pub body_insns_info_size: u64,
    #[serde(rename = "rb_iseq_constant_body.insns_info.succ_index_table")]
    pub body_succ_index_table: Option<u64>,
    #[serde(rename = "rb_iseq_constant_body.local_iseq")]
    pub body_local_iseq: u64,
    #[serde(rename = "rb_iseq_constant_body.parent_iseq")]
    pub body_parent_iseq: u64,
    #[serde(rename = "iseq_insn_info_entry.line_no")]
    pub insn_info_line_no: u64,
    /// The start position of an entry's instructions, in 2.5 only.
    #[serde(rename = "iseq_insn_info_entry.position")]
    pub insn_info_position: Option<u64>,

    // Method entries and definitions.
    #[serde(rename = "rb_callable_method_entry_t.flags")]
    pub me_flags: u64,
    #[serde(rename = "rb_callable_method_entry_t.defined_class")]
    pub me_defined_class: u64,
    #[serde(rename = "rb_callable_method_entry_t.def")]
    pub me_def: u64,
    #[serde(rename = "rb_callable_method_entry_t.called_id")]
    pub me_called_id: u64,
    #[serde(rename = "rb_callable_method_entry_t.owner")]
    pub me_owner: u64,
    #[serde(rename = "rb_method_definition_t.original_id")]
    pub def_original_id: u64,
    #[serde(rename = "vm_svar.cref_or_me")]
    pub svar_cref_or_me: u64,

    // Objects.
    #[serde(rename = "RBasic.flags")]
    pub basic_flags: u64,
    #[serde(rename = "RBasic.klass")]
    pub basic_klass: u64,
    #[serde(rename = "RString.as.heap.len")]
    pub string_heap_len: Option<u64>,
    /// The length field outside the union, from Ruby 3.3.
    #[serde(rename = "RString.len")]
    pub string_len: Option<u64>,
    #[serde(rename = "RString.as.heap.ptr")]
    pub string_heap_ptr: u64,
    /// The embedded characters. 2.7 has no `as.embed` and keeps them in
    /// `RString.as.ary`, which the alias accepts.
    #[serde(rename = "RString.as.embed.ary", alias = "RString.as.ary")]
    pub string_embed_ary: u64,
    /// The embedded length field of variable-width allocation builds
    /// (3.1 with USE_RVARGC, and 3.2, where it is the default).
    #[serde(rename = "RString.as.embed.len")]
    pub string_embed_len: Option<u64>,
    #[serde(rename = "RArray.as.heap.len")]
    pub array_heap_len: u64,
    #[serde(rename = "RArray.as.heap.ptr")]
    pub array_heap_ptr: u64,
    #[serde(rename = "RArray.as.ary")]
    pub array_embed_ary: u64,
    #[serde(rename = "RClass.ptr")]
    pub class_ptr: Option<u64>,
    /// The st_table of class instance variables, through 3.1.
    #[serde(rename = "rb_classext_t.iv_tbl")]
    pub classext_iv_tbl: Option<u64>,
    /// The array of class instance variables in 3.2, indexed through the
    /// class's object shape.
    #[serde(rename = "rb_classext_t.iv_ptr")]
    pub classext_iv_ptr: Option<u64>,
    #[serde(rename = "rb_classext_t.classpath")]
    pub classext_classpath: Option<u64>,
    /// The class extension embedded after `struct RClass`, from 3.3. 2.5
    /// to 3.1 point to it with `RClass.ptr`, and 3.2 places it at
    /// `sizeof(struct RClass)` without a struct for the pair.
    #[serde(rename = "RClass_and_rb_classext_t.classext")]
    pub class_embedded_classext: Option<u64>,
    /// The object a singleton class is attached to, from 3.3. 2.5 to 3.2
    /// keep it in the class's `__attached__` instance variable.
    #[serde(rename = "rb_classext_t.as.singleton_class.attached_object")]
    pub classext_attached_object: Option<u64>,

    // Object shapes (3.2 only), which locate class instance variables.
    /// The array of all shapes, indexed by shape id.
    #[serde(rename = "rb_vm_t.shape_list")]
    pub vm_shape_list: Option<u64>,
    /// The ID of the instance variable whose addition made the shape.
    #[serde(rename = "rb_shape_t.edge_name")]
    pub shape_edge_name: Option<u64>,
    /// One more than the index of that variable (a u32).
    #[serde(rename = "rb_shape_t.next_iv_index")]
    pub shape_next_iv_index: Option<u64>,
    /// The kind of transition, such as `SHAPE_IVAR` (a u8).
    #[serde(rename = "rb_shape_t.type")]
    pub shape_type: Option<u64>,
    /// The id of the parent shape, `INVALID_SHAPE_ID` at the root (a u32).
    #[serde(rename = "rb_shape_t.parent_id")]
    pub shape_parent_id: Option<u64>,

    // The symbol table, for method and class names. 2.5 and 2.6 name its
    // struct `struct symbols`, which the aliases accept.
    /// The newest serial, through 3.4.
    #[serde(rename = "rb_symbols_t.last_id", alias = "symbols.last_id")]
    pub symbols_last_id: Option<u64>,
    /// One past the newest serial, which 4.0 keeps in place of `last_id`.
    #[serde(rename = "rb_symbols_t.next_id")]
    pub symbols_next_id: Option<u64>,
    #[serde(rename = "rb_symbols_t.ids", alias = "symbols.ids")]
    pub symbols_ids: u64,

    // st_table, for class instance variables.
    #[serde(rename = "st_table.num_entries")]
    pub st_num_entries: u64,
    #[serde(rename = "st_table.entries_start")]
    pub st_entries_start: u64,
    #[serde(rename = "st_table.entries_bound")]
    pub st_entries_bound: u64,
    #[serde(rename = "st_table.entries")]
    pub st_entries: u64,
    #[serde(rename = "st_table_entry.key")]
    pub st_entry_key: u64,
    #[serde(rename = "st_table_entry.record")]
    pub st_entry_record: u64,
}

/// Bitfields, located by the probe since `offsetof` cannot take them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bitfields {
    #[serde(rename = "rb_thread_t.status")]
    pub thread_status: Bitfield,
    #[serde(rename = "rb_method_definition_t.type")]
    pub def_type: Bitfield,
}

/// Struct sizes in bytes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    pub rb_control_frame_t: u64,
    pub iseq_insn_info_entry: u64,
    pub st_table_entry: u64,
    pub rb_thread_t: u64,
    pub rb_execution_context_t: u64,
    pub rb_iseq_constant_body: u64,
    /// `struct RClass`, after which 3.2 embeds the class's `rb_classext_t`.
    #[serde(rename = "RClass")]
    pub rclass: Option<u64>,
    /// An entry of `rb_vm_t.shape_list` (3.2).
    pub rb_shape_t: Option<u64>,
}

/// Values of enums and macros from the headers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct Constants {
    pub VM_FRAME_MAGIC_MASK: u64,
    pub VM_FRAME_MAGIC_METHOD: u64,
    pub VM_FRAME_MAGIC_BLOCK: u64,
    pub VM_FRAME_MAGIC_CLASS: u64,
    pub VM_FRAME_MAGIC_TOP: u64,
    pub VM_FRAME_MAGIC_CFUNC: u64,
    pub VM_FRAME_MAGIC_IFUNC: u64,
    pub VM_FRAME_MAGIC_EVAL: u64,
    pub VM_FRAME_MAGIC_RESCUE: u64,
    pub VM_FRAME_MAGIC_DUMMY: u64,
    pub VM_FRAME_FLAG_BMETHOD: u64,
    pub VM_FRAME_FLAG_CFRAME: u64,
    pub VM_ENV_FLAG_LOCAL: u64,
    pub VM_ENV_DATA_INDEX_ME_CREF: i64,
    pub VM_ENV_DATA_INDEX_SPECVAL: i64,
    pub VM_ENV_DATA_INDEX_FLAGS: i64,
    pub VM_METHOD_TYPE_ISEQ: u64,
    pub VM_METHOD_TYPE_CFUNC: u64,
    pub VM_METHOD_TYPE_BMETHOD: u64,
    pub ISEQ_TYPE_TOP: u64,
    pub ISEQ_TYPE_METHOD: u64,
    pub ISEQ_TYPE_BLOCK: u64,
    pub ISEQ_TYPE_CLASS: u64,
    pub ISEQ_TYPE_RESCUE: u64,
    pub ISEQ_TYPE_ENSURE: u64,
    pub ISEQ_TYPE_EVAL: u64,
    pub ISEQ_TYPE_MAIN: u64,
    /// From 2.6.
    pub ISEQ_TYPE_PLAIN: Option<u64>,
    pub THREAD_RUNNABLE: u64,
    pub THREAD_STOPPED: u64,
    pub THREAD_STOPPED_FOREVER: u64,
    pub THREAD_KILLED: u64,
    pub RUBY_T_MASK: u64,
    pub RUBY_T_OBJECT: u64,
    pub RUBY_T_CLASS: u64,
    pub RUBY_T_MODULE: u64,
    pub RUBY_T_ICLASS: u64,
    pub RUBY_T_STRING: u64,
    pub RUBY_T_ARRAY: u64,
    pub RUBY_T_IMEMO: u64,
    pub RUBY_FL_USHIFT: u64,
    pub RUBY_FL_SINGLETON: u64,
    pub IMEMO_MASK: u64,
    pub imemo_iseq: u64,
    pub imemo_ment: u64,
    pub imemo_cref: u64,
    pub imemo_svar: u64,
    pub imemo_ifunc: u64,
    pub RSTRING_NOEMBED: u64,
    pub RSTRING_EMBED_LEN_MASK: Option<u64>,
    pub RSTRING_EMBED_LEN_SHIFT: Option<u64>,
    pub RARRAY_EMBED_FLAG: u64,
    pub RARRAY_EMBED_LEN_MASK: u64,
    pub RARRAY_EMBED_LEN_SHIFT: u64,
    pub ID_ENTRY_UNIT: u64,
    pub ID_ENTRY_SIZE: u64,
    pub ID_ENTRY_STR: u64,
    pub RUBY_ID_SCOPE_SHIFT: u64,
    pub tLAST_OP_ID: u64,
    pub id__attached__: Option<u64>,
    // Object shapes (3.2 only).
    /// 1 where the shape id is kept in the top bits of `RBasic.flags`, as
    /// on every 64-bit build; `shape_id_t` and `attr_index_t` are then u32.
    pub SHAPE_IN_BASIC_FLAGS: Option<u64>,
    pub SHAPE_FLAG_SHIFT: Option<u64>,
    pub SHAPE_MASK: Option<u64>,
    pub INVALID_SHAPE_ID: Option<u64>,
    /// The shape of objects whose variables are in a hash table instead.
    pub OBJ_TOO_COMPLEX_SHAPE_ID: Option<u64>,
    pub SHAPE_IVAR: Option<u64>,
    pub Qnil: u64,
    pub Qfalse: u64,
    pub Qtrue: u64,
    pub Qundef: u64,
}

/// The layout of one range of Ruby releases.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// First release this entry applies to, e.g. `3.1.0`.
    pub from: String,
    /// Last release this entry applies to, inclusive.
    pub through: String,
    /// True once a live process of this range has been profiled with it.
    pub verified: bool,
    /// The source tree and configure options the probe ran on.
    pub source: String,
    /// Reason the releases in the range share one layout.
    pub shared_because: String,
    pub fields: Fields,
    pub bitfields: Bitfields,
    pub sizes: Sizes,
    pub constants: Constants,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)]
    generator: String,
    layouts: Vec<Layout>,
}

/// A parsed `X.Y.Z` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `3.1.2` or `3.1` (patch 0); ignores a suffix like `-preview1`.
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.split(['-', 'p', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().unwrap_or(Some(0))?;
        Some(Version(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn table() -> &'static Vec<Layout> {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<Layout>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let table: Table =
            serde_json::from_str(TABLE_JSON).expect("layouts/ruby.json is checked by a unit test");
        table.layouts
    })
}

/// Returns every layout in the table.
pub fn all() -> &'static [Layout] {
    table()
}

/// Finds the layout whose range contains `version`.
pub fn find(version: Version) -> Option<&'static Layout> {
    table().iter().find(|layout| {
        let from = Version::parse(&layout.from);
        let through = Version::parse(&layout.through);
        matches!((from, through), (Some(a), Some(b)) if a <= version && version <= b)
    })
}

/// Lists the supported ranges for messages, e.g. `3.1.0-3.1.7`.
pub fn supported_list() -> String {
    let mut ranges: BTreeMap<Version, String> = BTreeMap::new();
    for layout in table() {
        let key = Version::parse(&layout.from).unwrap_or(Version(0, 0, 0));
        let mark = if layout.verified { "" } else { " (unverified)" };
        ranges.insert(key, format!("{}-{}{}", layout.from, layout.through, mark));
    }
    ranges.into_values().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses() {
        assert!(!all().is_empty());
        for layout in all() {
            assert!(Version::parse(&layout.from).is_some(), "{}", layout.from);
            assert!(Version::parse(&layout.through).is_some());
        }
    }

    #[test]
    fn debian_3_1_known_values() {
        // Ruby 3.1.2 as Debian bookworm builds it (ruby3.1).
        let layout = find(Version(3, 1, 2)).expect("3.1.2 is in the table");
        assert_eq!(layout.fields.thread_ec, 40);
        assert_eq!(layout.fields.thread_tid, Some(88));
        assert_eq!(layout.sizes.rb_control_frame_t, 64);
        let status = layout.bitfields.thread_status;
        assert_eq!((status.offset, status.shift, status.width), (92, 0, 2));
        assert!(layout.verified);
    }

    #[test]
    fn each_layout_covers_walker_needs() {
        for layout in all() {
            let f = &layout.fields;
            let from = &layout.from;
            let ractor_threads = f.vm_ractor_set.is_some()
                && f.ractor_threads_set.is_some()
                && f.thread_lt_node.is_some();
            let vm_threads = f.vm_living_threads.is_some() && f.thread_vmlt_node.is_some();
            assert!(ractor_threads || vm_threads, "{from}: no thread list");
            assert!(
                f.vm_main_thread.is_some() || f.vm_main_thread_before_ractors.is_some(),
                "{from}: no main thread"
            );
            assert!(
                f.thread_thread_id.is_some() || f.native_thread_thread_id.is_some(),
                "{from}: no pthread id"
            );
            assert!(
                f.string_heap_len.is_some() || f.string_len.is_some(),
                "{from}: no string length"
            );
            assert!(
                f.class_ptr.is_some()
                    || f.class_embedded_classext.is_some()
                    || layout.sizes.rclass.is_some(),
                "{from}: no class extension"
            );
            assert!(
                f.body_insns_info_positions.is_some()
                    || f.body_succ_index_table.is_some()
                    || f.insn_info_position.is_some(),
                "{from}: no start positions of line table entries"
            );
            let shapes = shape_members_present(layout);
            let ivar_table = f.class_ptr.is_some() && f.classext_iv_tbl.is_some();
            assert!(
                f.classext_classpath.is_some() || ivar_table || shapes,
                "{from}: no way to read class paths"
            );
            assert!(
                f.classext_attached_object.is_some()
                    || (layout.constants.id__attached__.is_some() && (ivar_table || shapes)),
                "{from}: no way to read the object of a singleton class"
            );
            if f.vm_shape_list.is_some() {
                assert!(shapes, "{from}: shape list without the shape members");
            }
        }
    }

    /// Tells whether every member that the 3.2 shape lookup reads is set.
    fn shape_members_present(layout: &Layout) -> bool {
        let f = &layout.fields;
        let c = &layout.constants;
        f.vm_shape_list.is_some()
            && f.shape_edge_name.is_some()
            && f.shape_next_iv_index.is_some()
            && f.shape_type.is_some()
            && f.shape_parent_id.is_some()
            && f.classext_iv_ptr.is_some()
            && layout.sizes.rb_shape_t.is_some()
            && c.SHAPE_IN_BASIC_FLAGS == Some(1)
            && c.SHAPE_FLAG_SHIFT.is_some()
            && c.SHAPE_MASK.is_some()
            && c.INVALID_SHAPE_ID.is_some()
            && c.SHAPE_IVAR.is_some()
    }

    #[test]
    fn each_series_has_a_layout() {
        for (major, minor) in [
            (2, 5),
            (2, 6),
            (2, 7),
            (3, 0),
            (3, 1),
            (3, 2),
            (3, 3),
            (3, 4),
            (4, 0),
        ] {
            let version = Version(major, minor, 0);
            let layout = find(version).unwrap_or_else(|| panic!("{version} is not in the table"));
            assert_eq!(layout.from, version.to_string());
        }
    }

    #[test]
    fn ruby_2_5_line_table_members() {
        // 2.5 keeps the entry pointer and count in two members and each
        // entry's start position in the entry.
        let layout = find(Version(2, 5, 9)).expect("2.5.9 is in the table");
        let f = &layout.fields;
        assert_eq!(f.body_insns_info_body, 112);
        assert_eq!(f.body_insns_info_size, 200);
        assert_eq!(f.body_insns_info_positions, None);
        assert_eq!(f.body_succ_index_table, None);
        assert_eq!(f.insn_info_position, Some(0));
        assert_eq!(f.insn_info_line_no, 4);
        assert_eq!(layout.sizes.iseq_insn_info_entry, 12);
        assert_eq!(layout.constants.ISEQ_TYPE_PLAIN, None);
    }

    #[test]
    fn ruby_2_5_4_moves_thread_list() {
        // 2.5.4 adds `rb_vm_t.fork_gen` before the list of living threads.
        let before = find(Version(2, 5, 3)).expect("2.5.3 is in the table");
        let after = find(Version(2, 5, 4)).expect("2.5.4 is in the table");
        assert_eq!(before.from, "2.5.0");
        assert_eq!(before.through, "2.5.3");
        assert_eq!(after.from, "2.5.4");
        assert_eq!(after.through, "2.5.9");
        assert_eq!(before.fields.vm_living_threads, Some(312));
        assert_eq!(after.fields.vm_living_threads, Some(320));
        assert_eq!(before.fields.vm_living_thread_num, Some(328));
        assert_eq!(after.fields.vm_living_thread_num, Some(336));
    }

    #[test]
    fn ruby_2_5_and_2_6_symbol_struct() {
        // `struct symbols` in symbol.c, read through the aliases.
        for version in [Version(2, 5, 3), Version(2, 5, 9), Version(2, 6, 10)] {
            let layout = find(version).expect("the version is in the table");
            assert_eq!(layout.fields.symbols_last_id, Some(0), "{version}");
            assert_eq!(layout.fields.symbols_ids, 16, "{version}");
        }
    }

    #[test]
    fn ruby_3_2_class_members() {
        let layout = find(Version(3, 2, 11)).expect("3.2.11 is in the table");
        let f = &layout.fields;
        assert_eq!(f.class_ptr, None);
        assert_eq!(f.class_embedded_classext, None);
        assert!(layout.sizes.rclass.is_some());
        assert_eq!(f.classext_iv_tbl, None);
        assert_eq!(f.classext_iv_ptr, Some(0));
        assert!(shape_members_present(layout));
        assert_eq!(layout.constants.SHAPE_FLAG_SHIFT, Some(32));
        // Variable-width allocation: embedded strings have their own length.
        assert!(f.string_heap_len.is_some());
        assert!(f.string_embed_len.is_some());
        assert_eq!(f.string_len, None);
    }

    #[test]
    fn every_layout_has_a_symbol_counter() {
        for layout in all() {
            let f = &layout.fields;
            assert!(
                f.symbols_last_id.is_some() || f.symbols_next_id.is_some(),
                "{}",
                layout.from
            );
        }
    }

    #[test]
    fn ruby_4_0_symbol_counter() {
        // 4.0 counts `next_id`, at the place of `last_id`.
        let layout = find(Version(4, 0, 5)).expect("4.0.5 is in the table");
        assert_eq!(layout.fields.symbols_last_id, None);
        assert_eq!(layout.fields.symbols_next_id, Some(0));
        assert_eq!(layout.fields.symbols_ids, 16);
        assert!(layout.fields.class_embedded_classext.is_some());
        assert!(layout.fields.classext_classpath.is_some());
    }

    #[test]
    fn version_parse_forms() {
        assert_eq!(Version::parse("3.1.2"), Some(Version(3, 1, 2)));
        assert_eq!(Version::parse("3.4"), Some(Version(3, 4, 0)));
        assert_eq!(Version::parse("3.3.0-preview2"), Some(Version(3, 3, 0)));
        assert_eq!(Version::parse("x.1"), None);
    }

    #[test]
    fn bitfield_extracts() {
        let field = Bitfield {
            offset: 0,
            shift: 3,
            width: 2,
        };
        assert_eq!(field.extract(0b1_1000), 3);
        assert_eq!(field.extract(0b0_1000), 1);
    }
}
