//! A short run of every fuzz target (the long ones are `scripts/fuzz.sh`'s):
//! the committed corpus, then mutations of it for a few seconds each. No
//! panic, no abort (an allocation above the bound aborts this binary), and
//! the largest allocation is reported.

use std::time::Duration;

use heman_fuzz::{corpus_dir, mutation, TrackingAllocator, ALLOCATION_BOUND, TARGETS};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Seconds of mutations per target (`HEMAN_FUZZ_SECONDS` overrides).
fn seconds() -> u64 {
    std::env::var("HEMAN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    let mut failures = Vec::new();
    for target in TARGETS {
        let seeds = mutation::seeds(&corpus_dir(target.name));
        assert!(!seeds.is_empty(), "{}: no corpus", target.name);
        let report = mutation::run(target, &seeds, Duration::from_secs(seconds()), 0x5eed);
        println!(
            "{:<13} {:>7} executions, {} panics, largest allocation {:.1} MiB",
            target.name,
            report.executions,
            report.panics.len(),
            report.largest_allocation as f64 / (1 << 20) as f64
        );
        assert!(report.largest_allocation <= ALLOCATION_BOUND);
        if let Some((input, message)) = report.panics.first() {
            let path = std::env::temp_dir().join(format!("heman-fuzz-{}.crash", target.name));
            std::fs::write(&path, input).unwrap();
            failures.push(format!(
                "{}: {} panics, first: {message} (input in {})",
                target.name,
                report.panics.len(),
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Runs one target on one input, panics and backtraces shown:
/// `HEMAN_FUZZ_TARGET=tfhe_object HEMAN_FUZZ_INPUT=crash-file cargo test
/// --release -p heman-fuzz --test short_run -- --ignored replay`.
#[test]
#[ignore = "replays HEMAN_FUZZ_INPUT on HEMAN_FUZZ_TARGET"]
fn replay() {
    // CI runs ignored tests too: without an input there is nothing to replay.
    let (Ok(target), Ok(input)) = (
        std::env::var("HEMAN_FUZZ_TARGET"),
        std::env::var("HEMAN_FUZZ_INPUT"),
    ) else {
        println!("replay skipped: HEMAN_FUZZ_TARGET and HEMAN_FUZZ_INPUT are not set");
        return;
    };
    let target = heman_fuzz::target(&target).expect("a target's name");
    (target.run)(&std::fs::read(input).unwrap());
}
