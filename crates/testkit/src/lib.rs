//! What every heman test suite needs: the repository root, HE-MAN's data
//! (for tests ignored by default, run by CI), and one way to compare
//! outputs.

#![warn(missing_docs)]

use std::path::PathBuf;

use heman_model::Tensor;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// HE-MAN's data (`../shared/data/heman` beside the checkout, or
/// `$HEMAN_SHARED_DATA`). Tests that read it are
/// `#[ignore = "needs ../shared/data/heman"]` (a user's clone has no
/// `../shared`) and CI runs them with `--include-ignored`: where it is asked
/// for and absent, the test fails saying where it looked.
pub fn shared_data() -> PathBuf {
    let dir = std::env::var_os("HEMAN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data/heman"));
    assert!(
        dir.is_dir(),
        "HE-MAN data not found at {} (set HEMAN_SHARED_DATA)",
        dir.display()
    );
    dir
}

/// Largest deviation of `actual` from `expected`, relative to
/// `max(1, max |expected|)` (the scale [`Tolerance::relative`] is of).
pub fn relative_error(actual: &Tensor, expected: &Tensor) -> f64 {
    max_abs_error(actual, expected) / expected.max_abs().max(1.0)
}

/// The operator models of `tests/models` whose graphs branch and rejoin (a
/// residual block, per-channel PRelu, products, differences and broadcast
/// sums of two branches, a Concat of Split parts): the TFHE compiler's and
/// runtime's dataflow tests run the same set.
pub const BRANCHING_OPERATOR_MODELS: [&str; 6] = [
    "resnet_block_v15",
    "prelu_channel",
    "mul_two_branches",
    "sub_two_branches",
    "add_broadcast_two_branches",
    "split_v13_concat",
];

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

/// How far an encrypted result may lie from the plaintext model's, per
/// element: `relative` of the output's magnitude (`max(1, max |expected|)`;
/// the computation's own error: encoding, rescaling, polynomial activations)
/// plus six standard deviations of the output flooding where it is known
/// (keyparams' `output_flooding.slot_error`; a Gaussian exceeds 6 sigma with
/// probability 2e-9).
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Of the output's magnitude.
    pub relative: f64,
    /// The flooding's expected error per output (six of them are allowed).
    pub slot_error: f64,
}

impl Tolerance {
    /// A tolerance relative to the output's magnitude only.
    pub const fn relative(relative: f64) -> Self {
        Self {
            relative,
            slot_error: 0.0,
        }
    }

    /// A relative tolerance plus the flooding of keyparams' `slot_error`.
    pub const fn flooded(relative: f64, slot_error: f64) -> Self {
        Self {
            relative,
            slot_error,
        }
    }

    /// The largest elementwise difference allowed against `expected`.
    pub fn absolute(&self, expected: &Tensor) -> f64 {
        self.relative * expected.max_abs().max(1.0) + 6.0 * self.slot_error
    }
}

/// The tolerance of a flooded result where the flooding's size is not at
/// hand: flooding at the noise bound costs about two bits of output
/// precision; the largest deviation measured on the digits example is 1.3%.
pub const FLOODED: Tolerance = Tolerance::relative(0.05);

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

/// Asserts that an encrypted result lies within `tolerance` of the plaintext
/// one and picks the same class wherever noise cannot flip it: where the
/// plaintext's two top classes are further apart than twice the largest
/// deviation. Returns the largest deviation.
pub fn assert_matches_plaintext(
    actual: &Tensor,
    expected: &Tensor,
    tolerance: Tolerance,
    what: &str,
) -> f64 {
    let deviation = max_abs_error(actual, expected);
    let allowed = tolerance.absolute(expected);
    assert!(
        deviation <= allowed,
        "{what}: encrypted result off by {deviation} (allowed {allowed}: {tolerance:?})"
    );
    let mut top: Vec<f64> = expected.data().to_vec();
    top.sort_by(|a, b| b.total_cmp(a));
    let margin = top[0] - top.get(1).copied().unwrap_or(f64::NEG_INFINITY);
    if margin > 2.0 * deviation {
        assert_eq!(
            actual.argmax(),
            expected.argmax(),
            "{what}: class differs from plaintext"
        );
    }
    deviation
}
