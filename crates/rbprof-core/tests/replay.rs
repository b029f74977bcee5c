//! Replays recorded walks of real Ruby processes (tests/fixtures/*.json),
//! so the walker is checked for every recorded version without the
//! interpreters, and mutates them to check that corrupt memory gives
//! errors, not panics.

use std::path::PathBuf;

use proptest::prelude::*;

use rbprof_core::fixture::{walk_all, Fixture};
use rbprof_core::memory::ReplayMemory;
use rbprof_core::ruby::walker::Walker;

fn fixtures() -> Vec<(PathBuf, Fixture)> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&folder).expect("the fixtures folder exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let fixture: Fixture =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        found.push((path, fixture));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!found.is_empty());
    found
}

#[test]
fn fixtures_replay_to_recorded_stacks() {
    for (path, fixture) in fixtures() {
        let replayed = fixture
            .replay()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(replayed, fixture.threads, "{}", path.display());
    }
}

#[test]
fn threads_fixtures_name_every_frame() {
    let all = fixtures();
    let threads_fixtures: Vec<_> = all
        .iter()
        .filter(|(path, _)| path.to_string_lossy().contains("/threads-"))
        .collect();
    assert!(threads_fixtures.len() >= 4, "one per tested Ruby version");
    for (path, fixture) in threads_fixtures {
        let named = |name: &str| {
            fixture
                .threads
                .iter()
                .find(|t| t.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{}: no thread {name}", path.display()))
        };
        let left = named("left");
        let right = named("right");
        assert!(
            left.frames
                .iter()
                .any(|f| f.starts_with("Object#burn_left - ")),
            "{}: {:?}",
            path.display(),
            left.frames
        );
        assert!(
            right
                .frames
                .iter()
                .any(|f| f.starts_with("block in Object#burn_right - ")),
            "{}: {:?}",
            path.display(),
            right.frames
        );
        for thread in &fixture.threads {
            assert!(thread.tid > 0, "{}: {thread:?}", path.display());
            let unnamed = thread.frames.iter().find(|f| f.starts_with("<c function>"));
            assert_eq!(unnamed, None, "{}", path.display());
        }
    }
}

#[test]
fn known_split_fixtures_have_lines() {
    for (path, fixture) in fixtures() {
        if !path.to_string_lossy().contains("/known_split-") {
            continue;
        }
        let main = &fixture.threads[0];
        assert_eq!(
            main.frames.first().map(|f| f.starts_with("<main> - ")),
            Some(true),
            "{}: {:?}",
            path.display(),
            main.frames
        );
        // Whichever of alpha, beta and gamma runs was called from line 21,
        // 22 or 23 of schedule.
        let schedule = main
            .frames
            .iter()
            .find(|f| f.starts_with("Object#schedule - "))
            .unwrap_or_else(|| panic!("{}: {:?}", path.display(), main.frames));
        let line: u32 = schedule.rsplit(':').next().unwrap().parse().unwrap();
        assert!((21..=23).contains(&line), "{}: {schedule}", path.display());
    }
}

/// Applies `edits` to a copy of the fixture's memory: each edit picks a
/// region and either overwrites a word with a value or cuts the region.
fn mutate(fixture: &Fixture, edits: &[(usize, usize, u64, bool)]) -> ReplayMemory {
    let mut regions: Vec<(u64, Vec<u8>)> = fixture
        .memory()
        .unwrap()
        .regions()
        .map(|(a, b)| (a, b.to_vec()))
        .collect();
    for &(region, offset, value, cut) in edits {
        let index = region % regions.len();
        let bytes = &mut regions[index].1;
        if bytes.is_empty() {
            continue;
        }
        let at = offset % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            let end = (at + 8).min(bytes.len());
            let value = value.to_le_bytes();
            bytes[at..end].copy_from_slice(&value[..end - at]);
        }
    }
    let mut memory = ReplayMemory::default();
    for (address, bytes) in regions {
        memory.insert(address, bytes);
    }
    memory
}

/// Values that stress bounds: huge, tiny, near the top of the address
/// space, and arbitrary.
fn nasty_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..4096,
        (u64::MAX - 4096)..=u64::MAX,
        (i32::MAX as u64 - 16)..=(i32::MAX as u64 + 16),
        Just(u64::MAX / 8),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn corrupt_fixture_never_panics(
        which in any::<usize>(),
        edits in prop::collection::vec(
            (any::<usize>(), any::<usize>(), nasty_value(), prop::bool::weighted(0.1)),
            1..12,
        ),
    ) {
        let all = fixtures();
        let (_, fixture) = &all[which % all.len()];
        let template = fixture.walker().unwrap();
        let memory = mutate(fixture, &edits);
        let mut walker = Walker::new(
            memory,
            template.layout(),
            fixture.vm_ptr_address,
            fixture.symbol_table,
        );
        walker.set_pthread_tid_offset(fixture.pthread_tid_offset);
        if let Ok(stacks) = walk_all(&mut walker) {
            for stack in stacks {
                prop_assert!(stack.frames.len() < 1_000_000);
            }
        }
    }
}
