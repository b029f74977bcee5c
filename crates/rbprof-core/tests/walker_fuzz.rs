//! Feeds random and truncated memory to the walker: a racing or corrupt
//! target must give an error or a short stack, never a panic, a huge
//! allocation or a hang.

use proptest::prelude::*;

use rbprof_core::memory::ReplayMemory;
use rbprof_core::ruby::layout;
use rbprof_core::ruby::walker::Walker;

const BASE: u64 = 0x5500_0000_0000;

/// Builds a memory image of `words`, where a word is either random bits or
/// a pointer back into the image, so that walks go several links deep.
fn image(words: &[(bool, u64)], cut: usize) -> ReplayMemory {
    let size = (words.len() * 8) as u64;
    let mut bytes = Vec::with_capacity(words.len() * 8);
    for &(pointer, value) in words {
        let word = if pointer {
            BASE + (value % size.max(8)) / 8 * 8
        } else {
            value
        };
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.truncate(cut.min(bytes.len()));
    let mut memory = ReplayMemory::default();
    memory.insert(BASE, bytes);
    memory
}

fn word() -> impl Strategy<Value = (bool, u64)> {
    (any::<bool>(), any::<u64>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_memory_never_panics(
        words in prop::collection::vec(word(), 1..2048),
        cut in any::<usize>(),
        vm_slot in any::<u64>(),
        ec_slot in any::<u64>(),
        layout_index in any::<usize>(),
    ) {
        let layouts = layout::all();
        let layout = &layouts[layout_index % layouts.len()];
        let size = words.len() as u64 * 8;
        let memory = image(&words, cut % (words.len() * 8 + 1));
        let vm_ptr = BASE + (vm_slot % size) / 8 * 8;
        let mut walker = Walker::new(memory, layout, vm_ptr, Some(BASE + 64));
        if let Ok(threads) = walker.threads() {
            for thread in threads.iter().take(16) {
                let _ = walker.stack(thread.ec);
                let _ = walker.thread_name(thread);
            }
        }
        let _ = walker.stack(BASE + (ec_slot % size) / 8 * 8);
        let _ = walker.stack(ec_slot);
    }
}
