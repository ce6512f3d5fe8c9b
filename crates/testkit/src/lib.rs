//! What every heman test suite needs: the repository root, HE-MAN's data
//! (skipped with a visible notice where absent), and one way to compare
//! outputs.

use std::path::PathBuf;

use heman_model::Tensor;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// HE-MAN's data (`../shared/data/heman` beside the checkout, or
/// `$HEMAN_SHARED_DATA`). `None`, with a visible notice naming `test`, when
/// absent: a user's clone has no `../shared`; CI has it.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("HEMAN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data/heman"));
    if dir.is_dir() {
        Some(dir)
    } else {
        let note = format!(
            "SKIPPED {test}: HE-MAN data not found at {} (set HEMAN_SHARED_DATA)",
            dir.display()
        );
        println!("{note}");
        eprintln!("{note}");
        None
    }
}

/// Largest deviation of `actual` from `expected`, relative to
/// `max(1, max |expected|)`: the tolerance scale of every comparison.
pub fn relative_error(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.len(), expected.len(), "output sizes differ");
    let scale = expected.max_abs().max(1.0);
    actual
        .data()
        .iter()
        .zip(expected.data())
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f64::max)
        / scale
}

/// The largest elementwise difference between two tensors of equal size.
pub fn max_abs_error(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.len(), expected.len(), "output sizes differ");
    actual
        .data()
        .iter()
        .zip(expected.data())
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f64::max)
}

/// The largest difference an encrypted, flooded result may show against the
/// plaintext model, per element: `relative` of the output's magnitude (the
/// computation's own error) plus six standard deviations of the output
/// flooding (`slot_error`, keyparams' `output_flooding.slot_error`; a
/// Gaussian exceeds 6 sigma with probability 2e-9).
pub fn encrypted_tolerance(expected: &Tensor, relative: f64, slot_error: f64) -> f64 {
    relative * expected.max_abs().max(1.0) + 6.0 * slot_error
}

/// Deterministic pseudo-random values in `[lo, hi)` (xorshift; test inputs only).
pub fn pseudo_random(count: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// Relative tolerance (as [`relative_error`]) of an encrypted result against
/// the plaintext model once outputs are flooded: flooding at the noise bound
/// costs about two bits of output precision; the largest deviation measured
/// on the digits example is 1.3%.
pub const FLOODED_TOLERANCE: f64 = 0.05;

/// Asserts that an encrypted result is within `tolerance` of the plaintext
/// one and picks the same class wherever noise cannot flip it: where the
/// plaintext's two top classes are further apart than twice the largest
/// deviation. Returns the relative error.
pub fn assert_matches_plaintext(
    actual: &Tensor,
    expected: &Tensor,
    tolerance: f64,
    what: &str,
) -> f64 {
    let err = relative_error(actual, expected);
    assert!(
        err < tolerance,
        "{what}: encrypted result off by {err} (relative; tolerance {tolerance})"
    );
    let mut top: Vec<f64> = expected.data().to_vec();
    top.sort_by(|a, b| b.total_cmp(a));
    let margin = top[0] - top.get(1).copied().unwrap_or(f64::NEG_INFINITY);
    let deviation = err * expected.max_abs().max(1.0);
    if margin > 2.0 * deviation {
        assert_eq!(
            actual.argmax(),
            expected.argmax(),
            "{what}: class differs from plaintext"
        );
    }
    err
}
