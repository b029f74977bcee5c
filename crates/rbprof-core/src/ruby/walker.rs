//! Walks the VM's threads and their control frames, and turns each frame
//! into an interned function with a current line.
//!
//! The path from the VM to a frame (Ruby 3.x): `ruby_current_vm_ptr` ->
//! `rb_vm_t.ractor.set` (ractors) -> `rb_ractor_t.threads.set` (threads) ->
//! `rb_thread_t.ec` -> `ec.cfp .. ec.vm_stack + vm_stack_size` (control
//! frames, innermost first) -> `cfp.iseq` (Ruby code) or the method entry
//! in `cfp.ep[-2]` (C functions).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::memory::{u32_at, u64_at, MemoryError, RemoteMemory};
use crate::sample::{Frame, FrameKind, Function, Interner};

use super::layout::Layout;
use super::lines::{position_of, LineTable};
use super::objects::{ObjectError, Objects};
use super::symbols::SymbolTable;

/// Maximum ractors and threads followed in the VM's lists.
const MAX_RACTORS: usize = 256;
const MAX_THREADS: usize = 8192;
/// Maximum environment links followed to find a block's method entry.
const MAX_EP_CHAIN: usize = 256;
/// Maximum shapes followed from a class's shape back to the root (3.2),
/// one per instance variable or capacity change.
const MAX_SHAPE_CHAIN: usize = 4096;
/// The largest VM stack accepted, in VALUEs (Ruby's default is 128 Ki for
/// threads; `RUBY_THREAD_VM_STACK_SIZE` can raise it).
const MAX_VM_STACK_WORDS: u64 = 64 << 20;
/// The largest part of a VM stack copied per walk.
const MAX_VALUE_STACK_COPY: u64 = 2 << 20;
/// Bytes added to a thread's last value stack length for the next copy.
const VALUE_STACK_MARGIN: u64 = 256;
/// Entries kept in each cache before it is cleared.
const MAX_CACHE: usize = 100_000;

/// Cause of a failed walk. The sample is dropped and the failure counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("inconsistent VM data: {0}")]
    Inconsistent(String),
    /// A frame changed while it was read.
    #[error("a frame changed while it was read: {0}")]
    Torn(String),
}

impl From<MemoryError> for WalkError {
    fn from(error: MemoryError) -> Self {
        WalkError::Object(ObjectError::Memory(error))
    }
}

impl WalkError {
    /// Tells whether the target process is gone.
    pub fn process_gone(&self) -> bool {
        matches!(
            self,
            WalkError::Object(ObjectError::Memory(MemoryError::ProcessGone))
        )
    }

    pub fn permission_denied(&self) -> bool {
        matches!(
            self,
            WalkError::Object(ObjectError::Memory(MemoryError::PermissionDenied))
        )
    }
}

fn inconsistent(message: impl Into<String>) -> WalkError {
    WalkError::Inconsistent(message.into())
}

/// A Ruby thread found in the VM's lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RubyThread {
    /// Address of the `rb_thread_t`.
    pub address: u64,
    pub ec: u64,
    /// Kernel thread id; 0 when the build does not record it.
    pub tid: i32,
    /// The `Thread#name` VALUE (a String or nil).
    pub name: u64,
    /// `rb_thread_t.status`: runnable, stopped, stopped forever, killed.
    pub status: u32,
    /// The thread's execution context is the one holding its ractor's GVL.
    pub holds_gvl: bool,
}

/// Cached facts about an instruction sequence.
#[derive(Clone, Debug)]
struct IseqInfo {
    body: u64,
    iseq_type: u64,
    iseq_encoded: u64,
    label: String,
    base_label: String,
    path: String,
    first_line: u32,
    lines: LineTable,
}

/// Key of a resolved Ruby frame: the same code reached through the same
/// method entry gets the same function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FrameKey {
    iseq: u64,
    body: u64,
    method_entry: u64,
    bmethod: bool,
}

/// Reads stacks of one Ruby process.
pub struct Walker<M: RemoteMemory> {
    memory: M,
    layout: &'static Layout,
    /// Address of the `ruby_current_vm_ptr` variable.
    vm_ptr_address: u64,
    symbols: SymbolTable,
    pub functions: Interner<Function>,
    iseqs: HashMap<u64, Arc<IseqInfo>>,
    /// Iseqs whose cached body was checked during the current walk.
    checked_iseqs: HashSet<u64>,
    /// Method entries found during the current walk, by the environment
    /// value they came from; the same value recurs in recursive stacks.
    checked_entries: RefCell<HashMap<(u64, bool), u64>>,
    /// Lines by (iseq body, instruction array, instruction position): both
    /// addresses, so that a freed iseq whose memory is reused by a new one
    /// is unlikely to match.
    lines: HashMap<(u64, u64, u64), u32>,
    /// The used part of the VM stack being walked, read at once, where
    /// most environments (`ep`) of its frames live.
    stack_copy: (u64, Vec<u8>),
    /// Bytes of value stack to copy, by execution context, from the
    /// previous walk.
    value_stack_guess: HashMap<u64, u64>,
    frames: HashMap<FrameKey, u32>,
    cfuncs: HashMap<(u64, Option<u32>), u32>,
    class_names: HashMap<u64, Option<String>>,
    thread_names: HashMap<(u64, u64), Option<String>>,
    /// Offset of `tid` in glibc's `struct pthread`, for Rubies that do not
    /// record kernel thread ids themselves.
    pthread_tid_offset: Option<u64>,
}

impl<M: RemoteMemory> Walker<M> {
    pub fn new(
        memory: M,
        layout: &'static Layout,
        vm_ptr_address: u64,
        symbol_table: Option<u64>,
    ) -> Self {
        Walker {
            memory,
            layout,
            vm_ptr_address,
            symbols: SymbolTable::new(symbol_table),
            functions: Interner::default(),
            iseqs: HashMap::new(),
            checked_iseqs: HashSet::new(),
            checked_entries: RefCell::new(HashMap::new()),
            lines: HashMap::new(),
            stack_copy: (0, Vec::new()),
            value_stack_guess: HashMap::new(),
            frames: HashMap::new(),
            cfuncs: HashMap::new(),
            class_names: HashMap::new(),
            thread_names: HashMap::new(),
            pthread_tid_offset: None,
        }
    }

    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// Returns the id of the synthetic frame that marks garbage collection.
    pub fn gc_function(&mut self) -> u32 {
        self.functions.intern(&Function {
            name: "(garbage collection)".into(),
            path: String::new(),
            kind: FrameKind::Synthetic,
        })
    }

    /// Returns the memory source, for a recording of the reads.
    pub fn into_memory(self) -> M {
        self.memory
    }

    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    /// Tells whether method and class names can be read.
    pub fn has_symbol_table(&self) -> bool {
        self.symbols.is_available()
    }

    fn objects(&self) -> Objects<'_, M> {
        Objects::new(&self.memory, self.layout)
    }

    /// Reads the VM pointer; zero while the VM is not set up yet.
    pub fn vm(&self) -> Result<u64, WalkError> {
        Ok(self.memory.read_u64(self.vm_ptr_address)?)
    }

    /// Lists the Ruby threads of every ractor.
    pub fn threads(&mut self) -> Result<Vec<RubyThread>, WalkError> {
        let vm = self.vm()?;
        if vm == 0 {
            return Err(inconsistent("the VM is not initialised yet"));
        }
        let f = &self.layout.fields;
        // Before ractors (2.5 to 2.7) the VM itself lists the living threads.
        if let (Some(list), Some(node)) = (f.vm_living_threads, f.thread_vmlt_node) {
            let mut threads = Vec::new();
            for link in self.list(vm.wrapping_add(list), MAX_THREADS)? {
                threads.push(self.thread(link.wrapping_sub(node), 0)?);
            }
            return Ok(threads);
        }
        let mut ractors = Vec::new();
        match (f.vm_ractor_set, f.ractor_vmlr_node, f.vm_main_ractor) {
            (Some(set), Some(node), _) => {
                for link in self.list(vm.wrapping_add(set), MAX_RACTORS)? {
                    ractors.push(link.wrapping_sub(node));
                }
            }
            (_, _, Some(main)) => ractors.push(self.memory.read_u64(vm.wrapping_add(main))?),
            _ => return Err(inconsistent("the layout has no way to reach threads")),
        }
        if ractors.is_empty() {
            return Err(inconsistent("the VM has no ractors"));
        }

        let mut threads = Vec::new();
        for ractor in ractors {
            self.ractor_threads(ractor, &mut threads)?;
        }
        Ok(threads)
    }

    /// Returns the address of the VM's main thread: after a fork, the
    /// thread that called fork.
    pub fn main_thread(&self) -> Result<u64, WalkError> {
        let vm = self.vm()?;
        let f = &self.layout.fields;
        let Some(offset) = f.vm_main_thread.or(f.vm_main_thread_before_ractors) else {
            return Err(inconsistent("the layout has no main thread"));
        };
        Ok(self.memory.read_u64(vm.wrapping_add(offset))?)
    }

    fn ractor_threads(&self, ractor: u64, out: &mut Vec<RubyThread>) -> Result<(), WalkError> {
        let f = &self.layout.fields;
        let (Some(set), Some(lt_node)) = (f.ractor_threads_set, f.thread_lt_node) else {
            return Err(inconsistent("the layout has no thread list"));
        };
        let running_ec = match f.ractor_running_ec {
            Some(offset) => self.memory.read_u64(ractor.wrapping_add(offset))?,
            None => 0,
        };
        for link in self.list(ractor.wrapping_add(set), MAX_THREADS)? {
            let thread = self.thread(link.wrapping_sub(lt_node), running_ec)?;
            if out.len() >= MAX_THREADS {
                return Err(inconsistent("more threads than rbprof follows"));
            }
            out.push(thread);
        }
        Ok(())
    }

    /// Follows a circular doubly linked list (`struct list_head` of
    /// ccan/list) and returns the addresses of its nodes.
    fn list(&self, head: u64, max: usize) -> Result<Vec<u64>, WalkError> {
        let mut nodes = Vec::new();
        let mut node = self.memory.read_u64(head)?;
        while node != head {
            if node == 0 || nodes.len() >= max {
                return Err(inconsistent(format!(
                    "list at {head:#x} is broken or too long"
                )));
            }
            nodes.push(node);
            node = self.memory.read_u64(node)?;
        }
        Ok(nodes)
    }

    fn thread(&self, address: u64, running_ec: u64) -> Result<RubyThread, WalkError> {
        let f = &self.layout.fields;
        let status_field = self.layout.bitfields.thread_status;
        let size = self.layout.sizes.rb_thread_t.min(4096) as usize;
        let bytes = self.memory.read_vec(address, size)?;
        let ec = u64_at(&bytes, f.thread_ec);
        if ec == 0 {
            return Err(inconsistent(format!(
                "thread {address:#x} has no execution context"
            )));
        }
        // The execution context points back at its thread on every 3.x
        // version: a wrong layout fails this check instead of producing
        // stacks from unrelated memory.
        if let Some(back) = f.ec_thread_ptr {
            let owner = self.memory.read_u64(ec.wrapping_add(back))?;
            if owner != address {
                return Err(inconsistent(format!(
                    "thread {address:#x}: its execution context belongs to {owner:#x}"
                )));
            }
        }
        let tid = self.kernel_tid(&bytes)?;
        let status = status_field.extract(u32_at(&bytes, status_field.offset));
        Ok(RubyThread {
            address,
            ec,
            tid,
            name: u64_at(&bytes, f.thread_name),
            status,
            holds_gvl: ec == running_ec,
        })
    }

    /// Reads a thread's kernel id: a member of the thread (3.1), of its
    /// native thread (3.2 and later), or of glibc's `struct pthread`
    /// behind its `pthread_t` (before 3.1, where Ruby did not keep it).
    fn kernel_tid(&self, thread: &[u8]) -> Result<i32, WalkError> {
        let f = &self.layout.fields;
        if let Some(offset) = f.thread_tid {
            return Ok(u32_at(thread, offset) as i32);
        }
        if let (Some(nt), Some(tid)) = (f.thread_nt, f.native_thread_tid) {
            let native = u64_at(thread, nt);
            if native == 0 {
                return Ok(0);
            }
            return Ok(self.memory.read_u32(native.wrapping_add(tid))? as i32);
        }
        match (f.thread_thread_id, self.pthread_tid_offset) {
            (Some(offset), Some(tid)) => {
                let pthread = u64_at(thread, offset);
                Ok(self.memory.read_u32(pthread.wrapping_add(tid))? as i32)
            }
            _ => Ok(0),
        }
    }

    /// Tells whether the layout needs glibc's `struct pthread` for kernel
    /// thread ids.
    pub fn needs_pthread_tid(&self) -> bool {
        let f = &self.layout.fields;
        f.thread_tid.is_none() && f.native_thread_tid.is_none() && f.thread_thread_id.is_some()
    }

    /// Returns the offset of `tid` in glibc's `struct pthread`, where it is
    /// used.
    pub fn pthread_tid_offset(&self) -> Option<u64> {
        self.pthread_tid_offset
    }

    /// Sets where glibc keeps the kernel thread id in `struct pthread`,
    /// once the caller has checked it against the process's threads.
    pub fn set_pthread_tid_offset(&mut self, offset: Option<u64>) {
        self.pthread_tid_offset = offset;
    }

    /// Returns `Thread#name` of a thread, cached by its name object.
    pub fn thread_name(&mut self, thread: &RubyThread) -> Option<String> {
        let key = (thread.address, thread.name);
        if let Some(name) = self.thread_names.get(&key) {
            return name.clone();
        }
        let objects = self.objects();
        let name = if objects.is_heap_object(thread.name) {
            objects.string(thread.name).ok()
        } else {
            None
        };
        if self.thread_names.len() >= MAX_CACHE {
            self.thread_names.clear();
        }
        self.thread_names.insert(key, name.clone());
        name
    }

    /// Reads the stack of an execution context, outermost frame first.
    pub fn stack(&mut self, ec: u64) -> Result<Vec<Frame>, WalkError> {
        // A deep stack that changes fast (a recursive method) tears often:
        // frames near the leaf are replaced while they are read. The
        // whole stack is read again a few times before the sample is
        // given up, so that a torn read is never kept with wrong names.
        const ATTEMPTS: usize = 4;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.stack_once(ec) {
                Err(error)
                    if attempt < ATTEMPTS
                        && !error.process_gone()
                        && !error.permission_denied() =>
                {
                    continue
                }
                result => return result,
            }
        }
    }

    fn stack_once(&mut self, ec: u64) -> Result<Vec<Frame>, WalkError> {
        let (bytes, count) = self.read_frames(ec)?;
        self.checked_iseqs.clear();
        self.checked_entries.get_mut().clear();
        let f = &self.layout.fields;
        let frame_size = self.layout.sizes.rb_control_frame_t;

        let mut frames = Vec::with_capacity(count as usize);
        let mut caller: Option<(u32, u32)> = None;
        for index in (0..count).rev() {
            let base = index * frame_size;
            let raw = RawFrame {
                pc: u64_at(&bytes, base + f.cfp_pc),
                iseq: u64_at(&bytes, base + f.cfp_iseq),
                ep: u64_at(&bytes, base + f.cfp_ep),
            };
            if let Some(frame) = self.frame(raw, caller)? {
                if let FrameOrigin::Ruby { path_function } = frame.1 {
                    caller = Some((path_function, frame.0.line));
                }
                frames.push(frame.0);
            }
        }
        Ok(frames)
    }

    /// Reads the control frames of an execution context, innermost first,
    /// and a copy of its value stack, which contains most of their
    /// environments.
    fn read_frames(&mut self, ec: u64) -> Result<(Vec<u8>, u64), WalkError> {
        let f = &self.layout.fields;
        let frame_size = self.layout.sizes.rb_control_frame_t;
        let vm_stack = self.memory.read_u64(ec.wrapping_add(f.ec_vm_stack))?;
        let stack_words = self.memory.read_u64(ec.wrapping_add(f.ec_vm_stack_size))?;
        // A thread created but not started yet has no VM stack: it has no
        // frames either.
        if vm_stack == 0 || stack_words == 0 {
            return Ok((Vec::new(), 0));
        }
        if stack_words > MAX_VM_STACK_WORDS {
            return Err(inconsistent(format!("VM stack of {stack_words} words")));
        }
        // Control frames grow down from the end of the VM stack.
        let Some(end) = vm_stack.checked_add(stack_words * 8) else {
            return Err(inconsistent(format!(
                "VM stack at {vm_stack:#x} wraps around"
            )));
        };
        let cfp = self.memory.read_u64(ec.wrapping_add(f.ec_cfp))?;
        if cfp < vm_stack || cfp > end || (end - cfp) % frame_size != 0 {
            return Err(inconsistent(format!(
                "frame pointer {cfp:#x} outside the VM stack {vm_stack:#x}..{end:#x}"
            )));
        }
        let count = (end - cfp) / frame_size;
        let frames_len = (count * frame_size) as usize;
        if frames_len > crate::memory::MAX_READ {
            return Err(inconsistent(format!("{count} control frames")));
        }
        let mut bytes = vec![0u8; frames_len];

        // The value stack (where most environments live) and the control
        // frames are copied in one syscall, value stack first. The
        // innermost frames' environments, at the top of the value stack,
        // are then copied right before the innermost control frames, so a
        // fast-changing leaf is seen consistently. The copy's length is
        // guessed from the previous walk of this thread and checked below.
        let guess = self.value_stack_guess.get(&ec).copied().unwrap_or(0);
        let copy_len = guess.min(cfp - vm_stack).min(MAX_VALUE_STACK_COPY);
        self.stack_copy.0 = vm_stack;
        self.stack_copy.1.clear();
        self.stack_copy.1.resize(copy_len as usize, 0);
        self.memory
            .read_two((vm_stack, &mut self.stack_copy.1), (cfp, &mut bytes))?;

        let sp = if count > 0 {
            u64_at(&bytes, f.cfp_sp)
        } else {
            vm_stack
        };
        let used = sp.saturating_sub(vm_stack);
        if used > copy_len && sp <= cfp && used <= MAX_VALUE_STACK_COPY {
            // The stack grew past the guess: copy the rest now.
            self.stack_copy.1.resize(used as usize, 0);
            let tail = &mut self.stack_copy.1[copy_len as usize..];
            if self.memory.read(vm_stack + copy_len, tail).is_err() {
                self.stack_copy.1.clear();
            }
        }
        if self.value_stack_guess.len() >= MAX_CACHE {
            self.value_stack_guess.clear();
        }
        // A margin lets the stack grow a little before the next walk
        // needs a second read.
        self.value_stack_guess.insert(ec, used + VALUE_STACK_MARGIN);
        Ok((bytes, count))
    }

    /// Resolves one control frame; `None` for frames that profilers do not
    /// show (dummy frames and C-implemented blocks).
    fn frame(
        &mut self,
        raw: RawFrame,
        caller: Option<(u32, u32)>,
    ) -> Result<Option<(Frame, FrameOrigin)>, WalkError> {
        let c = &self.layout.constants;
        if raw.ep == 0 {
            return Ok(None);
        }
        let env = self.read_env(raw.ep)?;
        let magic = env.flags & c.VM_FRAME_MAGIC_MASK;
        if magic == c.VM_FRAME_MAGIC_DUMMY {
            return Ok(None);
        }
        if env.flags & c.VM_FRAME_FLAG_CFRAME != 0 {
            if magic != c.VM_FRAME_MAGIC_CFUNC {
                return Ok(None);
            }
            let mut method_entry = self.check_method_entry(env.me_cref, true)?;
            if method_entry == 0 {
                // The copy of the value stack was taken before this short C
                // call had written its environment: read it again.
                let fresh = self.read_env_from(raw.ep, false)?;
                method_entry = self.check_method_entry(fresh.me_cref, true)?;
            }
            // Every C method frame has its method entry; without one, the
            // frame was replaced while it was read.
            if method_entry == 0 {
                return Err(WalkError::Torn("C frame without its method entry".into()));
            }
            let function = self.cfunc_function(method_entry, caller);
            let line = caller.map(|(_, line)| line).unwrap_or(0);
            return Ok(Some((Frame { function, line }, FrameOrigin::C)));
        }
        if raw.iseq == 0 {
            return Ok(None);
        }
        let Some(info) = self.iseq_info(raw.iseq)? else {
            return Ok(None);
        };
        let line = self.line(&info, raw.pc);
        let bmethod = env.flags & c.VM_FRAME_FLAG_BMETHOD != 0;
        let method_entry = self.frame_method_entry(env)?;
        // Every method frame has its method entry in its environment; a
        // frame without one was replaced while it was read.
        if method_entry == 0 && info.iseq_type == c.ISEQ_TYPE_METHOD {
            return Err(WalkError::Torn(format!(
                "method {} without its method entry",
                info.label
            )));
        }
        let key = FrameKey {
            iseq: raw.iseq,
            body: info.body,
            method_entry,
            bmethod,
        };
        let function = match self.frames.get(&key) {
            Some(&id) => id,
            None => {
                let name = self.ruby_frame_name(&info, method_entry, bmethod)?;
                let id = self.functions.intern(&Function {
                    name,
                    path: info.path.clone(),
                    kind: FrameKind::Ruby,
                });
                if self.frames.len() >= MAX_CACHE {
                    self.frames.clear();
                }
                self.frames.insert(key, id);
                id
            }
        };
        let frame = Frame { function, line };
        Ok(Some((
            frame,
            FrameOrigin::Ruby {
                path_function: function,
            },
        )))
    }

    /// Reads `ep[-2]` (method entry or cref), `ep[-1]` (previous
    /// environment or block handler) and `ep[0]` (flags).
    fn read_env(&self, ep: u64) -> Result<Env, WalkError> {
        self.read_env_from(ep, true)
    }

    /// Reads an environment, from the copy of the value stack when
    /// `use_copy` and it covers the environment, else from the target.
    fn read_env_from(&self, ep: u64, use_copy: bool) -> Result<Env, WalkError> {
        let c = &self.layout.constants;
        let low = c.VM_ENV_DATA_INDEX_ME_CREF.min(c.VM_ENV_DATA_INDEX_SPECVAL);
        let high = c.VM_ENV_DATA_INDEX_FLAGS.max(c.VM_ENV_DATA_INDEX_SPECVAL);
        let start = ep.wrapping_add((low * 8) as u64);
        let len = ((high - low + 1) * 8) as u64;
        let (copy_start, copy) = (&self.stack_copy.0, &self.stack_copy.1);
        let offset = start.wrapping_sub(*copy_start);
        let bytes = if use_copy && start >= *copy_start && offset + len <= copy.len() as u64 {
            copy[offset as usize..(offset + len) as usize].to_vec()
        } else {
            self.memory.read_vec(start, len as usize)?
        };
        let at = |index: i64| u64_at(&bytes, ((index - low) * 8) as u64);
        Ok(Env {
            me_cref: at(c.VM_ENV_DATA_INDEX_ME_CREF),
            specval: at(c.VM_ENV_DATA_INDEX_SPECVAL),
            flags: at(c.VM_ENV_DATA_INDEX_FLAGS),
        })
    }

    /// Returns the method entry in `value` if it is one, looking through a
    /// special-variable holder (`imemo_svar`) where one can be.
    fn check_method_entry(&self, value: u64, can_be_svar: bool) -> Result<u64, WalkError> {
        if let Some(&known) = self.checked_entries.borrow().get(&(value, can_be_svar)) {
            return Ok(known);
        }
        let found = self.read_method_entry(value, can_be_svar)?;
        self.checked_entries
            .borrow_mut()
            .insert((value, can_be_svar), found);
        Ok(found)
    }

    fn read_method_entry(&self, value: u64, can_be_svar: bool) -> Result<u64, WalkError> {
        let c = &self.layout.constants;
        let objects = self.objects();
        match objects.imemo_type(value)? {
            Some(kind) if kind == c.imemo_ment => Ok(value),
            Some(kind) if kind == c.imemo_svar && can_be_svar => {
                let inner = self
                    .memory
                    .read_u64(value.wrapping_add(self.layout.fields.svar_cref_or_me))?;
                self.check_method_entry(inner, false)
            }
            _ => Ok(0),
        }
    }

    /// Finds the method entry of a frame: in its own environment or, for a
    /// block, in the enclosing environments up to the method's local one.
    fn frame_method_entry(&self, env: Env) -> Result<u64, WalkError> {
        let c = &self.layout.constants;
        let mut env = env;
        for _ in 0..MAX_EP_CHAIN {
            if env.flags & c.VM_ENV_FLAG_LOCAL != 0 {
                return self.check_method_entry(env.me_cref, true);
            }
            let found = self.check_method_entry(env.me_cref, false)?;
            if found != 0 {
                return Ok(found);
            }
            let previous = env.specval & !0x03;
            if previous == 0 {
                return Ok(0);
            }
            env = self.read_env(previous)?;
        }
        Ok(0)
    }

    /// Returns what is known of an iseq. A cached entry is checked once per
    /// walk against the iseq's body pointer, because the GC may free an
    /// iseq and reuse its address.
    fn iseq_info(&mut self, iseq: u64) -> Result<Option<Arc<IseqInfo>>, WalkError> {
        if self.checked_iseqs.contains(&iseq) {
            if let Some(info) = self.iseqs.get(&iseq) {
                return Ok(Some(Arc::clone(info)));
            }
        }
        // One read gives the flags (is it an iseq at all?) and the body.
        let f = &self.layout.fields;
        let objects = self.objects();
        if !objects.is_heap_object(iseq) {
            return Ok(None);
        }
        let header_size = f.iseq_flags.max(f.iseq_body) + 8;
        let header = self.memory.read_vec(iseq, header_size as usize)?;
        let imemo = objects.imemo_type_of(u64_at(&header, f.iseq_flags));
        if imemo != Some(self.layout.constants.imemo_iseq) {
            return Ok(None);
        }
        let body = u64_at(&header, f.iseq_body);
        if body == 0 {
            return Err(inconsistent(format!("iseq {iseq:#x} has no body")));
        }
        self.checked_iseqs.insert(iseq);
        if let Some(info) = self.iseqs.get(&iseq) {
            if info.body == body {
                return Ok(Some(Arc::clone(info)));
            }
        }
        let info = Arc::new(self.read_iseq(body)?);
        if self.iseqs.len() >= MAX_CACHE {
            self.iseqs.clear();
        }
        self.iseqs.insert(iseq, Arc::clone(&info));
        Ok(Some(info))
    }

    fn read_iseq(&self, body: u64) -> Result<IseqInfo, WalkError> {
        let f = &self.layout.fields;
        let size = self.layout.sizes.rb_iseq_constant_body.min(4096) as usize;
        let bytes = self.memory.read_vec(body, size)?;
        let objects = self.objects();

        let pathobj = u64_at(&bytes, f.body_pathobj);
        // The path object is a String, or an Array of [path, realpath].
        let path_value = match objects.array_entry(pathobj, 0) {
            Ok(Some(path)) => path,
            _ => pathobj,
        };
        let path = objects.string(path_value)?;
        let label = objects.string(u64_at(&bytes, f.body_label))?;
        let base_label = objects.string(u64_at(&bytes, f.body_base_label))?;
        let first_lineno = u64_at(&bytes, f.body_first_lineno);
        // first_lineno is a Fixnum: (n << 1) | 1.
        let first_line = if first_lineno & 1 == 1 {
            (first_lineno >> 1) as u32
        } else {
            0
        };
        let lines = LineTable {
            entries: u64_at(&bytes, f.body_insns_info_body),
            size: u32_at(&bytes, f.body_insns_info_size) as u64,
            positions: f
                .body_insns_info_positions
                .map(|o| u64_at(&bytes, o))
                .unwrap_or(0),
            succ_index_table: f
                .body_succ_index_table
                .map(|o| u64_at(&bytes, o))
                .unwrap_or(0),
            iseq_size: u32_at(&bytes, f.body_iseq_size) as u64,
            entry_size: self.layout.sizes.iseq_insn_info_entry,
            line_offset: f.insn_info_line_no,
            position_offset: f.insn_info_position,
        };
        Ok(IseqInfo {
            body,
            iseq_type: u32_at(&bytes, f.body_type) as u64,
            iseq_encoded: u64_at(&bytes, f.body_iseq_encoded),
            label,
            base_label,
            path,
            first_line,
            lines,
        })
    }

    fn line(&mut self, info: &IseqInfo, pc: u64) -> u32 {
        let Some(pos) = position_of(pc, info.iseq_encoded) else {
            return info.first_line;
        };
        if let Some(&line) = self.lines.get(&(info.body, info.iseq_encoded, pos)) {
            return line;
        }
        match info.lines.line_at(&self.memory, pos) {
            Ok(Some(line)) => {
                if self.lines.len() >= MAX_CACHE {
                    self.lines.clear();
                }
                self.lines.insert((info.body, info.iseq_encoded, pos), line);
                line
            }
            _ => info.first_line,
        }
    }

    /// Names a Ruby frame the way profilers do: `Foo#bar`, `Foo.bar`,
    /// `block in Foo#bar`, or the iseq's own label where the method's owner
    /// is not known.
    fn ruby_frame_name(
        &mut self,
        info: &IseqInfo,
        method_entry: u64,
        bmethod: bool,
    ) -> Result<String, WalkError> {
        let parts = if method_entry != 0 {
            self.method_parts(method_entry)
        } else {
            None
        };
        let Some((method, prefix)) = parts else {
            return Ok(info.label.clone());
        };
        let qualified = format!("{}{method}", prefix.unwrap_or_default());
        // A define_method body is a block that runs as the method itself.
        if bmethod {
            return Ok(qualified);
        }
        // The code and the method entry found through the frame's
        // environment name the same method, unless the frame was replaced
        // between the two reads (the target keeps running while it is
        // read). Such a stack is dropped rather than misnamed.
        if !info.base_label.starts_with('<') && method != info.base_label {
            return Err(WalkError::Torn(format!(
                "code of {} with the method entry of {method}",
                info.base_label
            )));
        }
        if info.iseq_type == self.layout.constants.ISEQ_TYPE_METHOD {
            return Ok(qualified);
        }
        // "block in foo", "block (2 levels) in foo", "rescue in foo": keep
        // the prefix and qualify the method it belongs to.
        let suffix = format!(" in {}", info.base_label);
        match info.label.strip_suffix(&suffix) {
            Some(prefix) if !info.base_label.starts_with('<') => {
                Ok(format!("{prefix} in {qualified}"))
            }
            _ => Ok(info.label.clone()),
        }
    }

    /// Returns `Owner#method` or `Owner.method` for a method entry.
    fn qualified_method_name(&mut self, method_entry: u64) -> Option<String> {
        let (method, prefix) = self.method_parts(method_entry)?;
        Some(format!("{}{method}", prefix.unwrap_or_default()))
    }

    /// Returns a method entry's method name and, where the owner's name can
    /// be read, the owner prefix (`Foo#` or `Foo.`).
    fn method_parts(&mut self, method_entry: u64) -> Option<(String, Option<String>)> {
        let f = &self.layout.fields;
        let bytes = self.memory.read_vec(method_entry, 40).ok()?;
        let owner = u64_at(&bytes, f.me_owner);
        let definition = u64_at(&bytes, f.me_def);
        let called_id = u64_at(&bytes, f.me_called_id);
        let original_id = if definition != 0 {
            self.memory
                .read_u64(definition.wrapping_add(f.def_original_id))
                .ok()
        } else {
            None
        };
        let objects = Objects::new(&self.memory, self.layout);
        let method = original_id
            .and_then(|id| self.symbols.name(&objects, id))
            .or_else(|| self.symbols.name(&objects, called_id))?;
        Some((method, self.owner_prefix(owner)))
    }

    /// Returns `Foo#` for an instance method's owner or `Foo.` for a
    /// singleton class attached to `Foo`.
    fn owner_prefix(&mut self, owner: u64) -> Option<String> {
        let c = &self.layout.constants;
        let objects = Objects::new(&self.memory, self.layout);
        let flags = objects.flags(owner).ok()?;
        if flags & c.RUBY_FL_SINGLETON != 0 {
            let attached = self.attached_object(owner)?;
            let attached_flags = objects.flags(attached).ok()?;
            let kind = objects.builtin_type(attached_flags);
            if kind == c.RUBY_T_CLASS || kind == c.RUBY_T_MODULE {
                return Some(format!("{}.", self.class_path(attached)?));
            }
            return None;
        }
        Some(format!("{}#", self.class_path(owner)?))
    }

    /// Returns the address of a class's `rb_classext_t`: behind a pointer
    /// before Ruby 3.2, embedded after the `RClass` from 3.2.
    fn classext(&self, class: u64) -> Option<u64> {
        let f = &self.layout.fields;
        match (f.class_ptr, f.class_embedded_classext) {
            (Some(ptr), _) => self.memory.read_u64(class.wrapping_add(ptr)).ok(),
            (None, Some(offset)) => Some(class.wrapping_add(offset)),
            // 3.2 has no struct for the pair and places the extension at
            // `sizeof(struct RClass)`.
            (None, None) => self
                .layout
                .sizes
                .rclass
                .map(|size| class.wrapping_add(size)),
        }
    }

    /// Looks up an instance variable of a class or module: in its `iv_tbl`
    /// before 3.2, through its object shape in 3.2.
    fn class_ivar(&self, class: u64, id: u64) -> Option<u64> {
        if self.layout.fields.vm_shape_list.is_some() {
            return self.shape_class_ivar(class, id);
        }
        Objects::new(&self.memory, self.layout)
            .class_ivar(class, id)
            .ok()?
    }

    /// Finds a class instance variable as 3.2's `rb_ivar_lookup` does. The
    /// top bits of the class's flags hold its shape id. Each shape from
    /// there back to the root adds one variable, `edge_name`, whose value
    /// is at index `next_iv_index - 1` of the class's `iv_ptr` array.
    fn shape_class_ivar(&self, class: u64, id: u64) -> Option<u64> {
        let f = &self.layout.fields;
        let c = &self.layout.constants;
        let list_offset = f.vm_shape_list?;
        let (edge_name, next_iv_index) = (f.shape_edge_name?, f.shape_next_iv_index?);
        let (shape_type, parent_id) = (f.shape_type?, f.shape_parent_id?);
        let shape_size = self.layout.sizes.rb_shape_t?;
        // Only where the flags hold the shape id are shape ids and
        // indexes u32, as read below.
        if c.SHAPE_IN_BASIC_FLAGS != Some(1) || shape_size == 0 || shape_size > 256 {
            return None;
        }
        let (shift, mask, invalid) = (c.SHAPE_FLAG_SHIFT?, c.SHAPE_MASK?, c.INVALID_SHAPE_ID?);

        let flags = Objects::new(&self.memory, self.layout).flags(class).ok()?;
        let mut shape_id = (flags >> shift) & mask;
        if Some(shape_id) == c.OBJ_TOO_COMPLEX_SHAPE_ID {
            return None;
        }
        let vm = self.vm().ok()?;
        let list = self.memory.read_u64(vm.wrapping_add(list_offset)).ok()?;
        for _ in 0..MAX_SHAPE_CHAIN {
            let shape = list.wrapping_add(shape_id.wrapping_mul(shape_size));
            let bytes = self.memory.read_vec(shape, shape_size as usize).ok()?;
            let parent = u32_at(&bytes, parent_id) as u64;
            if parent == invalid {
                // The root shape adds no variable.
                return None;
            }
            if u64_at(&bytes, edge_name) == id {
                let kind = *bytes.get(shape_type as usize)? as u64;
                let next = u32_at(&bytes, next_iv_index) as u64;
                if Some(kind) != c.SHAPE_IVAR || next == 0 {
                    return None;
                }
                let ext = self.classext(class)?;
                let values = self
                    .memory
                    .read_u64(ext.wrapping_add(f.classext_iv_ptr?))
                    .ok()?;
                if values == 0 {
                    return None;
                }
                return self
                    .memory
                    .read_u64(values.wrapping_add((next - 1) * 8))
                    .ok();
            }
            shape_id = parent;
        }
        None
    }

    /// Returns the object a singleton class is attached to: a hidden
    /// instance variable before Ruby 3.3, a classext member from 3.3.
    fn attached_object(&self, singleton: u64) -> Option<u64> {
        let f = &self.layout.fields;
        if let Some(offset) = f.classext_attached_object {
            let ext = self.classext(singleton)?;
            return self.memory.read_u64(ext.wrapping_add(offset)).ok();
        }
        let id = self.layout.constants.id__attached__?;
        self.class_ivar(singleton, id)
    }

    /// Returns the name of a class or module, cached by address.
    fn class_path(&mut self, class: u64) -> Option<String> {
        if let Some(name) = self.class_names.get(&class) {
            return name.clone();
        }
        let name = self.read_class_path(class);
        if self.class_names.len() >= MAX_CACHE {
            self.class_names.clear();
        }
        self.class_names.insert(class, name.clone());
        name
    }

    fn read_class_path(&mut self, class: u64) -> Option<String> {
        let f = &self.layout.fields;
        let objects = Objects::new(&self.memory, self.layout);
        if let Some(offset) = f.classext_classpath {
            let ext = self.classext(class)?;
            let path = self.memory.read_u64(ext.wrapping_add(offset)).ok()?;
            return objects.string(path).ok();
        }
        for key in ["__classpath__", "__tmp_classpath__"] {
            let Some(id) = self.symbols.find_id(&objects, key) else {
                continue;
            };
            if let Some(path) = self.class_ivar(class, id) {
                if let Ok(name) = objects.string(path) {
                    return Some(name);
                }
            }
        }
        None
    }

    /// Interns the function of a C method frame, named `Owner#method`
    /// where the symbol table allows, else the `<c function>` placeholder.
    fn cfunc_function(&mut self, method_entry: u64, caller: Option<(u32, u32)>) -> u32 {
        let caller_function = caller.map(|(id, _)| id);
        if let Some(&id) = self.cfuncs.get(&(method_entry, caller_function)) {
            return id;
        }
        let name = if method_entry != 0 {
            self.qualified_method_name(method_entry)
        } else {
            None
        };
        let function = match name {
            // A C method has no source file: like Ruby's backtraces, show
            // the file it was called from.
            Some(name) => Function {
                name,
                path: caller_function
                    .and_then(|id| self.function_path(id))
                    .unwrap_or_else(|| "unknown".into()),
                kind: FrameKind::CFunc,
            },
            None => Function {
                name: "<c function>".into(),
                path: "unknown".into(),
                kind: FrameKind::CFunc,
            },
        };
        let id = self.functions.intern(&function);
        if method_entry != 0 {
            if self.cfuncs.len() >= MAX_CACHE {
                self.cfuncs.clear();
            }
            self.cfuncs.insert((method_entry, caller_function), id);
        }
        id
    }

    fn function_path(&self, id: u32) -> Option<String> {
        self.functions.get(id).map(|f| f.path.clone())
    }
}

#[derive(Clone, Copy, Debug)]
struct RawFrame {
    pc: u64,
    iseq: u64,
    ep: u64,
}

#[derive(Clone, Copy, Debug)]
struct Env {
    me_cref: u64,
    specval: u64,
    flags: u64,
}

enum FrameOrigin {
    Ruby { path_function: u32 },
    C,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::ReplayMemory;
    use crate::ruby::layout::{find, Version};

    fn put_u64(bytes: &mut [u8], offset: u64, value: u64) {
        let at = offset as usize;
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    fn put_u32(bytes: &mut [u8], offset: u64, value: u32) {
        let at = offset as usize;
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Builds a 3.2 VM whose class at `CLASS` has the shape chain
    /// root <- `@first` (index 0) <- `@second` (index 1).
    fn shaped_class_walker(shape_id_of_class: u64) -> Walker<ReplayMemory> {
        const VM_PTR: u64 = 0x1000;
        const VM: u64 = 0x10000;
        const SHAPES: u64 = 0x20000;
        const VALUES: u64 = 0x40000;
        let layout = find(Version(3, 2, 11)).expect("3.2.11 is in the table");
        let f = &layout.fields;
        let c = &layout.constants;
        let shape_size = layout.sizes.rb_shape_t.unwrap();
        let rclass = layout.sizes.rclass.unwrap();
        let mut memory = ReplayMemory::default();
        memory.insert(VM_PTR, VM.to_le_bytes().to_vec());

        let mut vm = vec![0u8; (f.vm_shape_list.unwrap() + 8) as usize];
        put_u64(&mut vm, f.vm_shape_list.unwrap(), SHAPES);
        memory.insert(VM, vm);

        let mut shapes = vec![0u8; (shape_size * 3) as usize];
        let invalid = c.INVALID_SHAPE_ID.unwrap() as u32;
        let ivar = c.SHAPE_IVAR.unwrap() as u8;
        // (edge name, next_iv_index, type, parent id) of shapes 0, 1, 2.
        let chain = [
            (0, 0, 0, invalid),
            (FIRST_ID, 1, ivar, 0),
            (SECOND_ID, 2, ivar, 1),
        ];
        for (index, (edge, next, kind, parent)) in chain.into_iter().enumerate() {
            let base = index as u64 * shape_size;
            put_u64(&mut shapes, base + f.shape_edge_name.unwrap(), edge);
            put_u32(&mut shapes, base + f.shape_next_iv_index.unwrap(), next);
            shapes[(base + f.shape_type.unwrap()) as usize] = kind;
            put_u32(&mut shapes, base + f.shape_parent_id.unwrap(), parent);
        }
        memory.insert(SHAPES, shapes);

        let iv_ptr = rclass + f.classext_iv_ptr.unwrap();
        let mut class = vec![0u8; (iv_ptr + 8) as usize];
        let flags = c.RUBY_T_CLASS | (shape_id_of_class << c.SHAPE_FLAG_SHIFT.unwrap());
        put_u64(&mut class, f.basic_flags, flags);
        put_u64(&mut class, iv_ptr, VALUES);
        memory.insert(CLASS, class);

        let mut values = Vec::new();
        values.extend_from_slice(&FIRST_VALUE.to_le_bytes());
        values.extend_from_slice(&SECOND_VALUE.to_le_bytes());
        memory.insert(VALUES, values);
        Walker::new(memory, layout, VM_PTR, None)
    }

    const CLASS: u64 = 0x30000;
    const FIRST_ID: u64 = 0x2a01;
    const SECOND_ID: u64 = 0x2b01;
    const FIRST_VALUE: u64 = 0x5550;
    const SECOND_VALUE: u64 = 0x6660;

    #[test]
    fn shape_ivar_follows_chain() {
        let walker = shaped_class_walker(2);
        assert_eq!(walker.class_ivar(CLASS, SECOND_ID), Some(SECOND_VALUE));
        assert_eq!(walker.class_ivar(CLASS, FIRST_ID), Some(FIRST_VALUE));
        assert_eq!(walker.class_ivar(CLASS, 0x2c01), None);
    }

    #[test]
    fn shape_ivar_stops_at_class_shape() {
        // A class whose shape has only `@first` does not see `@second`.
        let walker = shaped_class_walker(1);
        assert_eq!(walker.class_ivar(CLASS, FIRST_ID), Some(FIRST_VALUE));
        assert_eq!(walker.class_ivar(CLASS, SECOND_ID), None);
    }

    #[test]
    fn shape_ivar_skips_too_complex() {
        let layout = find(Version(3, 2, 11)).expect("3.2.11 is in the table");
        let too_complex = layout.constants.OBJ_TOO_COMPLEX_SHAPE_ID.unwrap();
        let walker = shaped_class_walker(too_complex);
        assert_eq!(walker.class_ivar(CLASS, FIRST_ID), None);
    }
}
