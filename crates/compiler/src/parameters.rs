//! CKKS parameter derivation from a plan's depth and calibrated magnitudes,
//! always inside the HomomorphicEncryption.org 128-bit table.

use heman_ckks::params::max_log_qp;
use heman_ckks::CkksParameters;
use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};

/// Largest prime heman uses: `tfhe-ntt`'s AVX-512 IFMA path takes primes
/// below 2^50 (about 3x faster than 62-bit primes).
pub const MAX_PRIME_BITS: u32 = 50;

/// The bit sizes that define a CKKS parameter set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterChoice {
    pub log_n: u32,
    /// `q_0` (holds the output: scale plus headroom), then one prime per level.
    pub q_bits: Vec<u32>,
    /// Special primes for hybrid key switching.
    pub p_bits: Vec<u32>,
    pub log_scale: u32,
}

impl ParameterChoice {
    pub fn log_qp(&self) -> u32 {
        self.q_bits.iter().chain(&self.p_bits).sum()
    }

    pub fn build(&self) -> Result<CkksParameters> {
        CkksParameters::new(self.log_n, &self.q_bits, &self.p_bits, self.log_scale)
            .map_err(|e| CompileError::Parameters(format!("{self:?}: {e}")))
    }
}

/// What the plan needs of the parameters.
#[derive(Debug, Clone, Copy)]
pub struct Requirements {
    /// Multiplicative levels the plan consumes.
    pub depth: usize,
    /// Bits above the scale that the largest value (calibrated, with margin)
    /// needs in `q_0`.
    pub headroom_bits: u32,
    /// The smallest acceptable scale, in bits.
    pub min_scale_bits: u32,
    /// The largest useful scale, in bits.
    pub max_scale_bits: u32,
    /// Scale worth keeping when trading modulus for fewer key-switching
    /// digits (smaller, faster keys).
    pub preferred_scale_bits: u32,
}

impl Requirements {
    /// Headroom for values up to `max_abs` in magnitude: sign, the value's
    /// integer bits and a factor 4 margin for inputs beyond calibration.
    pub fn headroom_for(max_abs: f64) -> u32 {
        (max_abs.max(1.0).log2().ceil() as u32) + 3
    }
}

/// Largest number of special primes (primes per key-switching digit) tried.
const MAX_ALPHA: usize = 4;

/// The largest scale at which `depth` levels fit `budget` bits with `alpha`
/// special primes, and the choice it gives. Hybrid key switching (Han-Ki
/// 2020) groups the q primes into digits of `alpha` primes; P, the product
/// of the special primes, must be at least the largest digit (the one with
/// q_0) or key switching adds noise above the scale.
fn fit(log_n: u32, budget: u32, alpha: usize, req: &Requirements) -> Option<ParameterChoice> {
    (req.min_scale_bits..=req.max_scale_bits.min(MAX_PRIME_BITS))
        .rev()
        .find_map(|s| {
            let q0 = (s + req.headroom_bits).min(MAX_PRIME_BITS);
            let largest_digit = q0 + (alpha.min(req.depth + 1) as u32 - 1) * s;
            let p = largest_digit.div_ceil(alpha as u32).max(s);
            let choice = ParameterChoice {
                log_n,
                q_bits: std::iter::once(q0)
                    .chain(std::iter::repeat_n(s, req.depth))
                    .collect(),
                p_bits: vec![p; alpha],
                log_scale: s,
            };
            (p <= MAX_PRIME_BITS && choice.log_qp() <= budget && q0 > s).then_some(choice)
        })
}

/// The smallest ring (fastest) that holds the depth at a scale of at least
/// `min_scale_bits`. Within it, the most special primes (fewest digits:
/// smaller keys, faster rotations) that keep the scale at
/// `preferred_scale_bits`, else one special prime and the largest scale.
pub fn derive(req: Requirements) -> Result<ParameterChoice> {
    for log_n in 12..=16 {
        let budget = max_log_qp(log_n).expect("log_n in the table");
        let candidates: Vec<ParameterChoice> = (1..=MAX_ALPHA)
            .filter_map(|alpha| fit(log_n, budget, alpha, &req))
            .collect();
        let preferred = candidates
            .iter()
            .rev()
            .find(|c| c.log_scale >= req.preferred_scale_bits)
            .or_else(|| candidates.iter().max_by_key(|c| c.log_scale));
        // Prime generation can still fail (too few primes = 1 mod 2N of that
        // size): fall through to the next ring then.
        if let Some(choice) = preferred.filter(|c| c.build().is_ok()) {
            return Ok(choice.clone());
        }
    }
    Err(CompileError::Parameters(format!(
        "depth {} with {} bits of headroom and a scale of at least 2^{} exceeds the 128-bit budget of every ring up to N = 2^16 (1761 bits)",
        req.depth, req.headroom_bits, req.min_scale_bits
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(depth: usize) -> Requirements {
        Requirements {
            depth,
            headroom_bits: 8,
            min_scale_bits: 28,
            max_scale_bits: 40,
            preferred_scale_bits: 30,
        }
    }

    #[test]
    fn every_choice_is_inside_the_security_table() {
        for depth in 1..=30 {
            let choice = derive(req(depth)).unwrap();
            assert!(
                choice.log_qp() <= max_log_qp(choice.log_n).unwrap(),
                "{choice:?}"
            );
            assert!(choice
                .q_bits
                .iter()
                .chain(&choice.p_bits)
                .all(|&b| b <= MAX_PRIME_BITS));
            assert_eq!(choice.q_bits.len(), depth + 1);
            let params = choice.build().unwrap();
            assert!(params.log_qp() <= max_log_qp(choice.log_n).unwrap() as f64);
            // P covers the largest key-switching digit (the one holding q_0).
            let largest_digit: u32 = choice.q_bits.iter().take(choice.p_bits.len()).sum();
            assert!(
                choice.p_bits.iter().sum::<u32>() >= largest_digit,
                "{choice:?}"
            );
        }
    }

    #[test]
    fn deeper_plans_need_larger_rings() {
        assert_eq!(derive(req(3)).unwrap().log_n, 13);
        assert_eq!(derive(req(10)).unwrap().log_n, 14);
        assert!(derive(req(100)).is_err());
    }
}
