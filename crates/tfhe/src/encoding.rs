//! Integers on the torus: `v` is carried as `v * delta mod 2^64`.

use serde::{Deserialize, Serialize};

/// The scale of an integer encoding (torus units per integer step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Encoding {
    /// Torus units (out of 2^64) per integer step: `v` is carried as
    /// `v * delta mod 2^64`.
    pub delta: u64,
}

/// Half the torus: a bootstrap's lookup table covers `[0, 2^63)`; the other
/// half is its negacyclic mirror.
pub const HALF_TORUS: u128 = 1 << 63;

impl Encoding {
    /// The encoding with `delta` torus units per integer step.
    pub fn new(delta: u64) -> Self {
        Self { delta }
    }

    /// The finest encoding under which `values` consecutive integers fit in
    /// `span` torus units (`HALF_TORUS` for a bootstrap input).
    pub fn fitting(values: u64, span: u128) -> Self {
        Self {
            delta: (span / values.max(1) as u128).min(u64::MAX as u128) as u64,
        }
    }

    /// The torus plaintext of `value`, negative values wrapping modulo 2^64.
    pub fn encode(self, value: i64) -> u64 {
        (value as u64).wrapping_mul(self.delta)
    }

    /// The integer nearest to `phase / delta`, reading the phase as signed.
    pub fn decode(self, phase: u64) -> i64 {
        let phase = phase as i64 as i128;
        let delta = self.delta.max(1) as i128;
        let rounded = if phase >= 0 {
            (phase + delta / 2) / delta
        } else {
            -((-phase + delta / 2) / delta)
        };
        rounded as i64
    }

    /// `delta` as a fraction of the torus.
    pub fn torus_fraction(self) -> f64 {
        self.delta as f64 / 18446744073709551616.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_signed_values() {
        let e = Encoding::new(1 << 50);
        for v in [-8i64, -1, 0, 1, 7, 8191] {
            assert_eq!(e.decode(e.encode(v)), v);
            assert_eq!(e.decode(e.encode(v).wrapping_add(1 << 48)), v);
            assert_eq!(e.decode(e.encode(v).wrapping_sub(1 << 48)), v);
        }
        assert_eq!(Encoding::fitting(16, HALF_TORUS).delta, 1 << 59);
    }
}
