//! A structure-aware mutation harness without coverage feedback: the short
//! run every test suite makes of each target, where libFuzzer (`fuzz/`) is
//! not built. Mutations aim at what parsers trust: length and count fields
//! (little-endian integers set to boundary values), truncation, extension,
//! repeated and spliced chunks, single bits.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::Target;

/// The largest input a mutation makes (libFuzzer runs use `-max_len` of
/// the same size): the bound [`crate::ALLOCATION_BOUND`] holds for.
pub const MAX_INPUT: usize = 1 << 20;

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs parsed.
    pub executions: u64,
    /// Inputs that made the target panic, with the panic's message.
    pub panics: Vec<(Vec<u8>, String)>,
    /// The largest single allocation seen (when the tracking allocator is
    /// the global one).
    pub largest_allocation: usize,
}

/// A small deterministic generator (xorshift64*), so a failing run repeats.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values parsers mistake for lengths and counts.
const BOUNDARIES: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// One to four mutations of `input`, sometimes spliced with `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len());
        match rng.below(8) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.below(8),
            1 if !out.is_empty() => out[at] = BOUNDARIES[rng.below(BOUNDARIES.len())] as u8,
            2 | 3 => {
                let width = [2, 4, 8][rng.below(3)];
                let value = BOUNDARIES[rng.below(BOUNDARIES.len())].to_le_bytes();
                let end = (at + width).min(out.len());
                out[at..end].copy_from_slice(&value[..end - at]);
            }
            4 => out.truncate(at),
            5 => {
                let extra = 1 + rng.below(64);
                out.extend((0..extra).map(|_| rng.next() as u8));
            }
            6 if !out.is_empty() => {
                let end = (at + 1 + rng.below(256)).min(out.len());
                let chunk = out[at..end].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, chunk);
            }
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(1024)).min(other.len());
                out.splice(
                    at..(at + end - from).min(out.len()),
                    other[from..end].to_vec(),
                );
            }
            _ => {}
        }
    }
    out.truncate(MAX_INPUT);
    out
}

/// Runs `target` on every seed, then on mutations of them for `duration`,
/// catching panics. Panic messages are kept; the default panic output is
/// silenced for the run.
pub fn run(target: Target, seeds: &[Vec<u8>], duration: Duration, seed: u64) -> Report {
    let mut report = Report::default();
    crate::allocation::reset_largest();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let once = |input: Vec<u8>, report: &mut Report| {
        report.executions += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (target.run)(&input))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            report.panics.push((input, message));
        }
    };
    for seed in seeds {
        once(seed.clone(), &mut report);
    }
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    while !seeds.is_empty() && start.elapsed() < duration {
        let input = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let mutated = mutate(&mut rng, input, other);
        once(mutated, &mut report);
    }
    std::panic::set_hook(hook);
    report.largest_allocation = crate::allocation::largest();
    report
}

/// The seeds in a corpus folder (empty if there is none).
pub fn seeds(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| b.len() <= MAX_INPUT)
        .collect()
}
