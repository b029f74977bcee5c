/*
 * Layout probe: compiled by generate.sh against a configured Ruby source
 * tree, it prints one entry of crates/rbprof-core/layouts/ruby.json.
 *
 * Usage: probe FROM THROUGH VERIFIED SOURCE SHARED_BECAUSE
 *
 * Every key is the C member designator that `offsetof` takes, the same
 * key that src/ruby/layout.rs reads. A member that only some Ruby versions
 * have sits inside a `RBPROF_HAS_*` conditional whose line also carries a
 * `compiles:` comment with a C expression. generate.sh test-compiles each
 * such expression against the tree and defines the macro only if it
 * compiles, so the entry omits members the version lacks. Members outside
 * those conditionals are mandatory, and a version that lacks one fails
 * to compile here.
 */
#include "probe-headers.h"

/* JSON emitter state: whether the current object has a member yet. */
static int object_has_member;

static void print_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            printf("\\%c", *c);
        } else if (*c < 0x20) {
            printf("\\u%04x", *c);
        } else {
            putchar(*c);
        }
    }
    putchar('"');
}

static void begin_member(const char *key)
{
    if (object_has_member) {
        putchar(',');
    }
    putchar('\n');
    print_json_string(key);
    putchar(':');
    object_has_member = 1;
}

static void begin_object(const char *key)
{
    begin_member(key);
    putchar('{');
    object_has_member = 0;
}

static void end_object(void)
{
    puts("}");
    object_has_member = 1;
}

static void emit_u64(const char *key, unsigned long long value)
{
    begin_member(key);
    printf("%llu", value);
}

static void emit_i64(const char *key, long long value)
{
    begin_member(key);
    printf("%lld", value);
}

static void emit_string(const char *key, const char *value)
{
    begin_member(key);
    print_json_string(value);
}

/*
 * Locates a bitfield in `bytes`, an instance of its struct that was
 * zeroed and then had the field set to all ones. Emits the offset of an
 * aligned little-endian u32 that contains the field, the shift of its
 * lowest bit in that u32, and its width. Exits if the set bits are not
 * one contiguous run inside one u32.
 */
static void emit_bitfield(const char *key, const unsigned char *bytes, size_t size)
{
    long first = -1;
    long last = -1;
    long count = 0;

    for (size_t bit = 0; bit < size * CHAR_BIT; bit++) {
        if (bytes[bit / CHAR_BIT] & (1u << (bit % CHAR_BIT))) {
            if (first < 0) {
                first = (long)bit;
            }
            last = (long)bit;
            count++;
        }
    }
    if (first < 0 || last - first + 1 != count) {
        fprintf(stderr, "error: bitfield %s: set bits are missing or not contiguous\n", key);
        exit(1);
    }
    if (first / 32 != last / 32) {
        fprintf(stderr, "error: bitfield %s straddles a 32-bit word (bits %ld-%ld)\n",
                key, first, last);
        exit(1);
    }

    begin_object(key);
    emit_u64("offset", (unsigned long long)(first / 32 * 4));
    emit_u64("shift", (unsigned long long)(first % 32));
    emit_u64("width", (unsigned long long)count);
    end_object();
}

/* A member of a typedef'd struct, e.g. TYPEDEF_FIELD(rb_thread_t, ec). */
#define TYPEDEF_FIELD(type, member) \
    emit_u64(#type "." #member, offsetof(type, member))
/* A member of a struct tag, e.g. STRUCT_FIELD(RString, as.heap.ptr). */
#define STRUCT_FIELD(tag, member) \
    emit_u64(#tag "." #member, offsetof(struct tag, member))
#define TYPEDEF_SIZE(type) emit_u64(#type, sizeof(type))
#define STRUCT_SIZE(tag) emit_u64(#tag, sizeof(struct tag))
#define CONSTANT(name) emit_u64(#name, (unsigned long long)(name))
#define SIGNED_CONSTANT(name) emit_i64(#name, (long long)(name))
/* -1 converts to all ones in an unsigned or enum bitfield of any width. */
#define TYPEDEF_BITFIELD(type, member)                                     \
    do {                                                                   \
        static type instance;                                              \
        memset(&instance, 0, sizeof instance);                             \
        instance.member = -1;                                              \
        emit_bitfield(#type "." #member, (const unsigned char *)&instance, \
                      sizeof instance);                                    \
    } while (0)

static void emit_fields(void)
{
    begin_object("fields");

    /* The VM's thread list, before ractors (2.7 and older). */
#ifdef RBPROF_HAS_VM_MAIN_THREAD /* compiles: offsetof(rb_vm_t, main_thread) */
    TYPEDEF_FIELD(rb_vm_t, main_thread);
#endif
#ifdef RBPROF_HAS_VM_LIVING_THREADS /* compiles: offsetof(rb_vm_t, living_threads) */
    TYPEDEF_FIELD(rb_vm_t, living_threads);
    TYPEDEF_FIELD(rb_vm_t, living_thread_num);
#endif

    /* The VM and its ractors (3.0 and later). */
#ifdef RBPROF_HAS_VM_RACTOR /* compiles: offsetof(rb_vm_t, ractor.main_ractor) */
    TYPEDEF_FIELD(rb_vm_t, ractor.set);
    TYPEDEF_FIELD(rb_vm_t, ractor.cnt);
    TYPEDEF_FIELD(rb_vm_t, ractor.main_ractor);
    TYPEDEF_FIELD(rb_vm_t, ractor.main_thread);
#endif
#ifdef RBPROF_HAS_RACTOR_VMLR_NODE /* compiles: offsetof(rb_ractor_t, vmlr_node) */
    TYPEDEF_FIELD(rb_ractor_t, vmlr_node);
#endif
#ifdef RBPROF_HAS_RACTOR_THREADS /* compiles: offsetof(rb_ractor_t, threads.running_ec) */
    TYPEDEF_FIELD(rb_ractor_t, threads.set);
    TYPEDEF_FIELD(rb_ractor_t, threads.cnt);
    TYPEDEF_FIELD(rb_ractor_t, threads.running_ec);
    TYPEDEF_FIELD(rb_ractor_t, threads.main);
#endif

    /* Threads. */
#ifdef RBPROF_HAS_THREAD_VMLT_NODE /* compiles: offsetof(rb_thread_t, vmlt_node) */
    TYPEDEF_FIELD(rb_thread_t, vmlt_node);
#endif
#ifdef RBPROF_HAS_THREAD_LT_NODE /* compiles: offsetof(rb_thread_t, lt_node) */
    TYPEDEF_FIELD(rb_thread_t, lt_node);
#endif
    TYPEDEF_FIELD(rb_thread_t, self);
#ifdef RBPROF_HAS_THREAD_RACTOR /* compiles: offsetof(rb_thread_t, ractor) */
    TYPEDEF_FIELD(rb_thread_t, ractor);
#endif
    TYPEDEF_FIELD(rb_thread_t, ec);
#ifdef RBPROF_HAS_THREAD_THREAD_ID /* compiles: offsetof(rb_thread_t, thread_id) */
    TYPEDEF_FIELD(rb_thread_t, thread_id);
#endif
#ifdef RBPROF_HAS_THREAD_TID /* compiles: offsetof(rb_thread_t, tid) */
    TYPEDEF_FIELD(rb_thread_t, tid);
#endif
#ifdef RBPROF_HAS_THREAD_NT /* compiles: offsetof(rb_thread_t, nt) */
    TYPEDEF_FIELD(rb_thread_t, nt);
    STRUCT_FIELD(rb_native_thread, thread_id);
#endif
#ifdef RBPROF_HAS_NATIVE_THREAD_TID /* compiles: offsetof(struct rb_native_thread, tid) */
    STRUCT_FIELD(rb_native_thread, tid);
#endif
    TYPEDEF_FIELD(rb_thread_t, name);

    /* Execution contexts and control frames. */
    TYPEDEF_FIELD(rb_execution_context_t, vm_stack);
    TYPEDEF_FIELD(rb_execution_context_t, vm_stack_size);
    TYPEDEF_FIELD(rb_execution_context_t, cfp);
#ifdef RBPROF_HAS_EC_THREAD_PTR /* compiles: offsetof(rb_execution_context_t, thread_ptr) */
    TYPEDEF_FIELD(rb_execution_context_t, thread_ptr);
#endif
    TYPEDEF_FIELD(rb_control_frame_t, pc);
    TYPEDEF_FIELD(rb_control_frame_t, sp);
    TYPEDEF_FIELD(rb_control_frame_t, iseq);
    TYPEDEF_FIELD(rb_control_frame_t, self);
    TYPEDEF_FIELD(rb_control_frame_t, ep);

    /* Instruction sequences. */
    TYPEDEF_FIELD(rb_iseq_t, flags);
    TYPEDEF_FIELD(rb_iseq_t, body);
    STRUCT_FIELD(rb_iseq_constant_body, type);
    STRUCT_FIELD(rb_iseq_constant_body, iseq_size);
    STRUCT_FIELD(rb_iseq_constant_body, iseq_encoded);
    STRUCT_FIELD(rb_iseq_constant_body, location.pathobj);
    STRUCT_FIELD(rb_iseq_constant_body, location.base_label);
    STRUCT_FIELD(rb_iseq_constant_body, location.label);
    STRUCT_FIELD(rb_iseq_constant_body, location.first_lineno);
    /* The line table: a struct insns_info from 2.6, two members in 2.5. */
#ifdef RBPROF_HAS_INSNS_INFO_BODY /* compiles: offsetof(struct rb_iseq_constant_body, insns_info.body) */
    STRUCT_FIELD(rb_iseq_constant_body, insns_info.body);
    STRUCT_FIELD(rb_iseq_constant_body, insns_info.size);
#endif
#ifdef RBPROF_HAS_INSNS_INFO_SIZE /* compiles: offsetof(struct rb_iseq_constant_body, insns_info_size) */
    STRUCT_FIELD(rb_iseq_constant_body, insns_info);
    STRUCT_FIELD(rb_iseq_constant_body, insns_info_size);
#endif
#ifdef RBPROF_HAS_INSNS_INFO_POSITIONS /* compiles: offsetof(struct rb_iseq_constant_body, insns_info.positions) */
    STRUCT_FIELD(rb_iseq_constant_body, insns_info.positions);
#endif
#ifdef RBPROF_HAS_SUCC_INDEX_TABLE /* compiles: offsetof(struct rb_iseq_constant_body, insns_info.succ_index_table) */
    STRUCT_FIELD(rb_iseq_constant_body, insns_info.succ_index_table);
#endif
    STRUCT_FIELD(rb_iseq_constant_body, local_iseq);
    STRUCT_FIELD(rb_iseq_constant_body, parent_iseq);
    STRUCT_FIELD(iseq_insn_info_entry, line_no);
#ifdef RBPROF_HAS_INSN_INFO_POSITION /* compiles: offsetof(struct iseq_insn_info_entry, position) */
    STRUCT_FIELD(iseq_insn_info_entry, position);
#endif

    /* Method entries and definitions. */
    TYPEDEF_FIELD(rb_callable_method_entry_t, flags);
    TYPEDEF_FIELD(rb_callable_method_entry_t, defined_class);
    TYPEDEF_FIELD(rb_callable_method_entry_t, def);
    TYPEDEF_FIELD(rb_callable_method_entry_t, called_id);
    TYPEDEF_FIELD(rb_callable_method_entry_t, owner);
    TYPEDEF_FIELD(rb_method_definition_t, original_id);
    STRUCT_FIELD(vm_svar, cref_or_me);

    /* Objects. */
    STRUCT_FIELD(RBasic, flags);
    STRUCT_FIELD(RBasic, klass);
#ifdef RBPROF_HAS_STRING_HEAP_LEN /* compiles: offsetof(struct RString, as.heap.len) */
    STRUCT_FIELD(RString, as.heap.len);
#endif
#ifdef RBPROF_HAS_STRING_LEN /* compiles: offsetof(struct RString, len) */
    STRUCT_FIELD(RString, len);
#endif
    STRUCT_FIELD(RString, as.heap.ptr);
#ifdef RBPROF_HAS_STRING_EMBED_ARY /* compiles: offsetof(struct RString, as.embed.ary) */
    STRUCT_FIELD(RString, as.embed.ary);
#endif
#ifdef RBPROF_HAS_STRING_ARY /* compiles: offsetof(struct RString, as.ary) */
    STRUCT_FIELD(RString, as.ary);
#endif
#ifdef RBPROF_HAS_STRING_EMBED_LEN /* compiles: offsetof(struct RString, as.embed.len) */
    STRUCT_FIELD(RString, as.embed.len);
#endif
    STRUCT_FIELD(RArray, as.heap.len);
    STRUCT_FIELD(RArray, as.heap.ptr);
    STRUCT_FIELD(RArray, as.ary);
#ifdef RBPROF_HAS_CLASS_PTR /* compiles: offsetof(struct RClass, ptr) */
    STRUCT_FIELD(RClass, ptr);
#endif
#ifdef RBPROF_HAS_CLASSEXT_IV_TBL /* compiles: offsetof(rb_classext_t, iv_tbl) */
    TYPEDEF_FIELD(rb_classext_t, iv_tbl);
#endif
#ifdef RBPROF_HAS_CLASSEXT_CLASSPATH /* compiles: offsetof(rb_classext_t, classpath) */
    TYPEDEF_FIELD(rb_classext_t, classpath);
#endif
#ifdef RBPROF_HAS_CLASS_AND_CLASSEXT /* compiles: offsetof(struct RClass_and_rb_classext_t, classext) */
    STRUCT_FIELD(RClass_and_rb_classext_t, classext);
#endif
#ifdef RBPROF_HAS_CLASSEXT_ATTACHED_OBJECT /* compiles: offsetof(rb_classext_t, as.singleton_class.attached_object) */
    TYPEDEF_FIELD(rb_classext_t, as.singleton_class.attached_object);
#endif

    /*
     * Object shapes of 3.2: a class keeps its instance variables in the
     * `iv_ptr` array, at the index its shape chain gives each name.
     */
#ifdef RBPROF_HAS_CLASSEXT_IV_PTR /* compiles: offsetof(rb_classext_t, iv_ptr) */
    TYPEDEF_FIELD(rb_classext_t, iv_ptr);
#endif
#ifdef RBPROF_HAS_VM_SHAPE_LIST /* compiles: offsetof(rb_vm_t, shape_list) */
    TYPEDEF_FIELD(rb_vm_t, shape_list);
    TYPEDEF_FIELD(rb_shape_t, edge_name);
    TYPEDEF_FIELD(rb_shape_t, next_iv_index);
    TYPEDEF_FIELD(rb_shape_t, type);
    TYPEDEF_FIELD(rb_shape_t, parent_id);
#endif

    /*
     * The symbol table, for method and class names. 2.5 and 2.6 define it
     * as `struct symbols` in symbol.c, 2.7 to 3.4 as rb_symbols_t in
     * symbol.h, and 4.0 as rb_symbols_t in symbol.c with `next_id` in
     * place of `last_id`. generate.sh copies the .c definitions.
     */
#ifdef RBPROF_HAS_SYMBOLS_LAST_ID /* compiles: offsetof(rb_symbols_t, last_id) */
    TYPEDEF_FIELD(rb_symbols_t, last_id);
#endif
#ifdef RBPROF_HAS_SYMBOLS_NEXT_ID /* compiles: offsetof(rb_symbols_t, next_id) */
    TYPEDEF_FIELD(rb_symbols_t, next_id);
#endif
#ifdef RBPROF_HAS_SYMBOLS_IDS /* compiles: offsetof(rb_symbols_t, ids) */
    TYPEDEF_FIELD(rb_symbols_t, ids);
#endif
#ifdef RBPROF_HAS_STRUCT_SYMBOLS /* compiles: offsetof(struct symbols, ids) */
    STRUCT_FIELD(symbols, last_id);
    STRUCT_FIELD(symbols, ids);
#endif

    /* st_table, for class instance variables. */
    TYPEDEF_FIELD(st_table, num_entries);
    TYPEDEF_FIELD(st_table, entries_start);
    TYPEDEF_FIELD(st_table, entries_bound);
    TYPEDEF_FIELD(st_table, entries);
    TYPEDEF_FIELD(st_table_entry, key);
    TYPEDEF_FIELD(st_table_entry, record);

    end_object();
}

static void emit_bitfields(void)
{
    begin_object("bitfields");
    TYPEDEF_BITFIELD(rb_thread_t, status);
    TYPEDEF_BITFIELD(rb_method_definition_t, type);
    end_object();
}

static void emit_sizes(void)
{
    begin_object("sizes");
    TYPEDEF_SIZE(rb_control_frame_t);
    STRUCT_SIZE(iseq_insn_info_entry);
    TYPEDEF_SIZE(st_table_entry);
    TYPEDEF_SIZE(rb_thread_t);
    TYPEDEF_SIZE(rb_execution_context_t);
    STRUCT_SIZE(rb_iseq_constant_body);
    /* 3.2 embeds a class's rb_classext_t right after its struct RClass. */
    STRUCT_SIZE(RClass);
#ifdef RBPROF_HAS_VM_SHAPE_LIST
    TYPEDEF_SIZE(rb_shape_t);
#endif
    end_object();
}

static void emit_constants(void)
{
    begin_object("constants");

    CONSTANT(VM_FRAME_MAGIC_MASK);
    CONSTANT(VM_FRAME_MAGIC_METHOD);
    CONSTANT(VM_FRAME_MAGIC_BLOCK);
    CONSTANT(VM_FRAME_MAGIC_CLASS);
    CONSTANT(VM_FRAME_MAGIC_TOP);
    CONSTANT(VM_FRAME_MAGIC_CFUNC);
    CONSTANT(VM_FRAME_MAGIC_IFUNC);
    CONSTANT(VM_FRAME_MAGIC_EVAL);
    CONSTANT(VM_FRAME_MAGIC_RESCUE);
    CONSTANT(VM_FRAME_MAGIC_DUMMY);
    CONSTANT(VM_FRAME_FLAG_BMETHOD);
    CONSTANT(VM_FRAME_FLAG_CFRAME);
    CONSTANT(VM_ENV_FLAG_LOCAL);
    SIGNED_CONSTANT(VM_ENV_DATA_INDEX_ME_CREF);
    SIGNED_CONSTANT(VM_ENV_DATA_INDEX_SPECVAL);
    SIGNED_CONSTANT(VM_ENV_DATA_INDEX_FLAGS);

    CONSTANT(VM_METHOD_TYPE_ISEQ);
    CONSTANT(VM_METHOD_TYPE_CFUNC);
    CONSTANT(VM_METHOD_TYPE_BMETHOD);

    CONSTANT(ISEQ_TYPE_TOP);
    CONSTANT(ISEQ_TYPE_METHOD);
    CONSTANT(ISEQ_TYPE_BLOCK);
    CONSTANT(ISEQ_TYPE_CLASS);
    CONSTANT(ISEQ_TYPE_RESCUE);
    CONSTANT(ISEQ_TYPE_ENSURE);
    CONSTANT(ISEQ_TYPE_EVAL);
    CONSTANT(ISEQ_TYPE_MAIN);
#ifdef RBPROF_HAS_ISEQ_TYPE_PLAIN /* compiles: ISEQ_TYPE_PLAIN */
    CONSTANT(ISEQ_TYPE_PLAIN);
#endif

    CONSTANT(THREAD_RUNNABLE);
    CONSTANT(THREAD_STOPPED);
    CONSTANT(THREAD_STOPPED_FOREVER);
    CONSTANT(THREAD_KILLED);

    CONSTANT(RUBY_T_MASK);
    CONSTANT(RUBY_T_OBJECT);
    CONSTANT(RUBY_T_CLASS);
    CONSTANT(RUBY_T_MODULE);
    CONSTANT(RUBY_T_ICLASS);
    CONSTANT(RUBY_T_STRING);
    CONSTANT(RUBY_T_ARRAY);
    CONSTANT(RUBY_T_IMEMO);
    CONSTANT(RUBY_FL_USHIFT);
    CONSTANT(RUBY_FL_SINGLETON);

    CONSTANT(IMEMO_MASK);
    CONSTANT(imemo_iseq);
    CONSTANT(imemo_ment);
    CONSTANT(imemo_cref);
    CONSTANT(imemo_svar);
    CONSTANT(imemo_ifunc);

    CONSTANT(RSTRING_NOEMBED);
#ifdef RBPROF_HAS_RSTRING_EMBED_LEN_MASK /* compiles: RSTRING_EMBED_LEN_MASK */
    CONSTANT(RSTRING_EMBED_LEN_MASK);
#endif
#ifdef RBPROF_HAS_RSTRING_EMBED_LEN_SHIFT /* compiles: RSTRING_EMBED_LEN_SHIFT */
    CONSTANT(RSTRING_EMBED_LEN_SHIFT);
#endif
    CONSTANT(RARRAY_EMBED_FLAG);
    CONSTANT(RARRAY_EMBED_LEN_MASK);
    CONSTANT(RARRAY_EMBED_LEN_SHIFT);

    CONSTANT(ID_ENTRY_UNIT);
    CONSTANT(ID_ENTRY_SIZE);
    CONSTANT(ID_ENTRY_STR);
    CONSTANT(RUBY_ID_SCOPE_SHIFT);
    CONSTANT(tLAST_OP_ID);
#ifdef RBPROF_HAS_ID_ATTACHED /* compiles: id__attached__ */
    CONSTANT(id__attached__);
#endif
#ifdef RBPROF_HAS_VM_SHAPE_LIST
    CONSTANT(SHAPE_IN_BASIC_FLAGS);
    CONSTANT(SHAPE_FLAG_SHIFT);
    CONSTANT(SHAPE_MASK);
    CONSTANT(INVALID_SHAPE_ID);
    CONSTANT(OBJ_TOO_COMPLEX_SHAPE_ID);
    CONSTANT(SHAPE_IVAR);
#endif

    CONSTANT(Qnil);
    CONSTANT(Qfalse);
    CONSTANT(Qtrue);
    CONSTANT(Qundef);

    end_object();
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s FROM THROUGH VERIFIED SOURCE SHARED_BECAUSE\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[3], "true") != 0 && strcmp(argv[3], "false") != 0) {
        fprintf(stderr, "error: VERIFIED must be true or false, not '%s'\n", argv[3]);
        return 2;
    }

    putchar('{');
    emit_string("from", argv[1]);
    emit_string("through", argv[2]);
    begin_member("verified");
    fputs(argv[3], stdout);
    emit_string("source", argv[4]);
    emit_string("shared_because", argv[5]);
    emit_fields();
    emit_bitfields();
    emit_sizes();
    emit_constants();
    puts("}");
    return 0;
}
