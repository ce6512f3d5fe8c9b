//! CKKS parameter derivation from a plan's depth and calibrated magnitudes,
//! always inside the HomomorphicEncryption.org table of the security level
//! asked for (128 bits by default).

use heman_ckks::params::SecurityLevel;
use heman_ckks::CkksParameters;
use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};

/// Largest prime heman uses: `tfhe-ntt`'s AVX-512 IFMA path takes primes
/// below 2^50 (about 3x faster than 62-bit primes).
pub const MAX_PRIME_BITS: u32 = 50;

/// The bit sizes that define a CKKS parameter set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterChoice {
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// `q_0` (holds the output: scale plus headroom), then one prime per level.
    pub q_bits: Vec<u32>,
    /// Special primes for hybrid key switching.
    pub p_bits: Vec<u32>,
    /// log2 of the scale.
    pub log_scale: u32,
    /// The classical security level whose table bounds log2(QP): 128, 192
    /// or 256 (files written before levels existed are 128).
    #[serde(default = "default_security_bits")]
    pub security_bits: u32,
    /// q primes per key-switching digit when fewer than the special primes
    /// (`None`: as many, the usual hybrid key switching). Bootstrapping's
    /// chains keep P one prime above a digit: its message sits far below the
    /// scale, where key switching's noise would otherwise reach.
    #[serde(default)]
    pub digit_size: Option<usize>,
}

fn default_security_bits() -> u32 {
    128
}

impl ParameterChoice {
    /// Bits of all primes, ciphertext and special: log2(QP).
    pub fn log_qp(&self) -> u32 {
        self.q_bits.iter().chain(&self.p_bits).sum()
    }

    /// The security level the choice was made for.
    pub fn security(&self) -> Result<SecurityLevel> {
        SecurityLevel::from_bits(self.security_bits)
            .map_err(|e| CompileError::Parameters(e.to_string()))
    }

    /// The CKKS parameter set of these sizes, with its primes generated;
    /// refused if log2(QP) exceeds its security level's table.
    pub fn build(&self) -> Result<CkksParameters> {
        let security = self.security()?;
        let bound = security.max_log_qp(self.log_n).unwrap_or(0);
        if self.log_qp() > bound {
            return Err(CompileError::Parameters(format!(
                "{self:?}: log2(QP) = {} exceeds the {}-bit bound of {bound} at N = 2^{}",
                self.log_qp(),
                security.bits(),
                self.log_n
            )));
        }
        let params = CkksParameters::new(self.log_n, &self.q_bits, &self.p_bits, self.log_scale);
        match self.digit_size {
            None => params,
            Some(d) => params.and_then(|p| p.with_digit_size(d)),
        }
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
    /// The security level whose table bounds the modulus.
    pub security: SecurityLevel,
    /// log2 of the smallest ring tried (12 for the fastest that fits; more
    /// when a smaller ring's parameters proved too imprecise).
    pub min_log_n: u32,
}

impl Requirements {
    /// Headroom for values up to `max_abs` in magnitude: sign, the value's
    /// integer bits and a factor 4 margin for inputs beyond calibration.
    pub fn headroom_for(max_abs: f64) -> u32 {
        (max_abs.max(1.0).log2().ceil() as u32) + 3
    }
}

/// Largest number of special primes (primes per key-switching digit) tried.
const MAX_ALPHA: usize = 8;

impl ParameterChoice {
    /// Number of key-switching digits, ceil(q primes / special primes).
    pub fn digits(&self) -> usize {
        self.q_bits
            .len()
            .div_ceil(self.digit_size.unwrap_or(self.p_bits.len()))
    }

    /// Residue polynomials in one switching key (digits times primes of
    /// Q ∪ P): what sizes the evaluation keys and the inner product each
    /// rotation computes, the cost that more special primes cut.
    pub fn switching_key_limbs(&self) -> usize {
        self.digits() * (self.q_bits.len() + self.p_bits.len())
    }
}

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
                security_bits: req.security.bits(),
                digit_size: None,
            };
            (p <= MAX_PRIME_BITS && choice.log_qp() <= budget && q0 > s).then_some(choice)
        })
}

/// Every parameter set of the smallest ring (fastest, from `min_log_n` on) that holds the depth
/// at a scale of at least `min_scale_bits`: for each number of special
/// primes, the largest scale that fits. Sorted by precision, largest scale
/// first, then by key size. More special primes cost scale (P takes bits
/// from the budget) and buy smaller, faster keys; which trade the plan can
/// afford is for [`choose_by_precision`] to find out.
pub fn candidates(req: Requirements) -> Result<Vec<ParameterChoice>> {
    for log_n in req.min_log_n.max(12)..=16 {
        let budget = req.security.max_log_qp(log_n).expect("log_n in the table");
        // Prime generation can still fail (too few primes = 1 mod 2N of that
        // size): such a choice is left out, and a ring without any falls
        // through to the next.
        let mut found: Vec<ParameterChoice> = (1..=MAX_ALPHA)
            .filter_map(|alpha| fit(log_n, budget, alpha, &req))
            .filter(|c| c.build().is_ok())
            .collect();
        found.sort_by_key(|c| (std::cmp::Reverse(c.log_scale), c.switching_key_limbs()));
        found.dedup();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(CompileError::Parameters(format!(
        "depth {} with {} bits of headroom and a scale of at least 2^{} exceeds the {}-bit budget of every ring up to N = 2^16 ({} bits)",
        req.depth,
        req.headroom_bits,
        req.min_scale_bits,
        req.security.bits(),
        req.security.max_log_qp(16).unwrap_or(0)
    )))
}

/// The choice made without measuring: among `all` (from [`candidates`]),
/// the smallest keys that keep the scale at `preferred_scale_bits`, else the
/// largest scale.
pub fn unmeasured_choice(all: &[ParameterChoice], preferred_scale_bits: u32) -> &ParameterChoice {
    all.iter()
        .filter(|c| c.log_scale >= preferred_scale_bits)
        .min_by_key(|c| (c.switching_key_limbs(), std::cmp::Reverse(c.log_scale)))
        .unwrap_or(&all[0])
}

/// What a candidate's encrypted dry run showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Index into the candidates.
    pub candidate: usize,
    /// Expected error per output slot, in output units.
    pub slot_error: f64,
}

/// The outcome of [`choose_by_precision`].
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionChoice {
    /// Index of the chosen candidate.
    pub chosen: usize,
    /// Whether it keeps the required precision (false: none did, and the
    /// most precise was taken).
    pub meets: bool,
    /// Every dry run, in the order they ran.
    pub measured: Vec<Measured>,
}

/// The candidate with the smallest keys whose outputs keep an error per slot
/// of at most `allowed`, by measurement. `candidates` come most precise
/// first (as [`candidates`] sorts them); `measure` runs one encrypted dry run
/// of the candidate at the index it is given and returns the error per
/// output slot.
///
/// The most precise candidate is measured first. The output noise is a
/// roughly fixed number of integer units, so each other candidate's error is
/// predicted as that one's times 2^(scale difference); the cheapest whose
/// prediction fits is measured, and if it misses (noise grows when a
/// polynomial's intermediate values lose precision), the next cheapest.
pub fn choose_by_precision<E>(
    candidates: &[ParameterChoice],
    allowed: f64,
    mut measure: impl FnMut(usize) -> std::result::Result<f64, E>,
) -> std::result::Result<PrecisionChoice, E> {
    assert!(!candidates.is_empty(), "at least one candidate");
    let first = measure(0)?;
    let mut measured = vec![Measured {
        candidate: 0,
        slot_error: first,
    }];
    if first > allowed {
        return Ok(PrecisionChoice {
            chosen: 0,
            meets: false,
            measured,
        });
    }
    let top = candidates[0].log_scale as i32;
    let mut order: Vec<usize> = (1..candidates.len())
        .filter(|&i| {
            let predicted = first * 2f64.powi(top - candidates[i].log_scale as i32);
            predicted <= allowed
                && candidates[i].switching_key_limbs() < candidates[0].switching_key_limbs()
        })
        .collect();
    order.sort_by_key(|&i| {
        (
            candidates[i].switching_key_limbs(),
            std::cmp::Reverse(candidates[i].log_scale),
        )
    });
    for i in order {
        let slot_error = measure(i)?;
        measured.push(Measured {
            candidate: i,
            slot_error,
        });
        if slot_error <= allowed {
            return Ok(PrecisionChoice {
                chosen: i,
                meets: true,
                measured,
            });
        }
    }
    Ok(PrecisionChoice {
        chosen: 0,
        meets: true,
        measured,
    })
}

/// Bits of q_0 and of EvalMod's primes in a bootstrapping chain: EvalMod runs
/// at the scale of q_0, 2^10 above the message, and its error is relative to
/// it.
const CIRCUIT_PRIME_BITS: u32 = 60;
/// Bits of the primes CoeffToSlot and SlotToCoeff spend (their diagonals'
/// scale: precision enough for 20-bit bootstraps, 10 bits less each than
/// EvalMod's).
const DFT_PRIME_BITS: u32 = 50;
/// Bits of the special primes of a bootstrapping chain.
const SPECIAL_PRIME_BITS: u32 = 61;
/// q primes per key-switching digit in a bootstrapping chain: 8 as in the
/// benchmarked bootstrap (README), which keeps the keys to a few GiB.
const BOOTSTRAPPING_DIGIT: usize = 8;
/// Key-switching digits of a bootstrapping chain: three, as in the
/// benchmarked bootstrap; a fourth would make every key and key switch a
/// third larger for levels a network of ReLU layers rarely uses (one Conv
/// and one ReLU polynomial fill 7 or 8 levels, two need 13 or more).
const BOOTSTRAPPING_DIGITS: usize = 3;
/// The smallest compute scale of a bootstrapping chain, in bits: about the
/// precision a bootstrap keeps, so the compute levels do not lose more.
const MIN_BOOTSTRAPPED_SCALE_BITS: u32 = 32;

/// The modulus chain of a plan that bootstraps, at N = 2^16 (the only ring
/// whose 128-bit modulus holds the circuit): q_0, the compute levels,
/// SlotToCoeff's, EvalMod's and CoeffToSlot's primes from the bottom up
/// (the circuit runs top down), and special primes one prime above a
/// digit of [`BOOTSTRAPPING_DIGIT`]. The compute levels are the most that
/// fit [`BOOTSTRAPPING_DIGITS`] digits and the bound at no less than
/// [`MIN_BOOTSTRAPPED_SCALE_BITS`], at the largest scale the bound then
/// leaves (at most `max_scale_bits`); refused when fewer than `min_levels`
/// remain.
pub fn bootstrapping_choice(
    shape: &heman_ckks::BootstrappingParameters,
    min_levels: usize,
    max_scale_bits: u32,
    security: SecurityLevel,
) -> Result<ParameterChoice> {
    let log_n = 16;
    let bound = security.max_log_qp(log_n).unwrap_or(0);
    let p_count =
        (BOOTSTRAPPING_DIGIT as u32 * CIRCUIT_PRIME_BITS).div_ceil(SPECIAL_PRIME_BITS) + 1;
    let dft = shape.coeffs_to_slots_levels + shape.slots_to_coeffs_levels;
    let fixed = CIRCUIT_PRIME_BITS * (1 + shape.eval_mod_depth() as u32)
        + DFT_PRIME_BITS * dft as u32
        + SPECIAL_PRIME_BITS * p_count;
    let budget = bound.saturating_sub(fixed);
    let within_digits =
        (BOOTSTRAPPING_DIGIT * BOOTSTRAPPING_DIGITS).saturating_sub(1 + shape.depth());
    let levels = ((budget / MIN_BOOTSTRAPPED_SCALE_BITS) as usize).min(within_digits);
    if levels < min_levels.max(1) {
        return Err(CompileError::Parameters(format!(
            "a bootstrapping chain at N = 2^16 leaves {levels} compute levels of at least {MIN_BOOTSTRAPPED_SCALE_BITS} bits within the {}-bit bound of {bound}; the plan's deepest stage needs {min_levels}",
            security.bits()
        )));
    }
    let scale = (budget / levels as u32)
        .min(max_scale_bits)
        .min(MAX_PRIME_BITS);
    let mut q_bits = vec![CIRCUIT_PRIME_BITS];
    q_bits.extend(std::iter::repeat_n(scale, levels));
    q_bits.extend(std::iter::repeat_n(
        DFT_PRIME_BITS,
        shape.slots_to_coeffs_levels,
    ));
    q_bits.extend(std::iter::repeat_n(
        CIRCUIT_PRIME_BITS,
        shape.eval_mod_depth(),
    ));
    q_bits.extend(std::iter::repeat_n(
        DFT_PRIME_BITS,
        shape.coeffs_to_slots_levels,
    ));
    Ok(ParameterChoice {
        log_n,
        q_bits,
        p_bits: vec![SPECIAL_PRIME_BITS; p_count as usize],
        log_scale: scale,
        security_bits: security.bits(),
        digit_size: Some(BOOTSTRAPPING_DIGIT),
    })
}

/// The compute levels of a bootstrapping chain for `shape`: those below the
/// circuit's, above q_0.
pub fn compute_levels(
    choice: &ParameterChoice,
    shape: &heman_ckks::BootstrappingParameters,
) -> usize {
    (choice.q_bits.len() - 1).saturating_sub(shape.depth())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`unmeasured_choice`] among the [`candidates`] for `req`, as
    /// `compile_ckks` makes it.
    fn derive(req: Requirements) -> Result<ParameterChoice> {
        Ok(unmeasured_choice(&candidates(req)?, req.preferred_scale_bits).clone())
    }

    fn req(depth: usize) -> Requirements {
        Requirements {
            depth,
            headroom_bits: 8,
            min_scale_bits: 28,
            max_scale_bits: 40,
            preferred_scale_bits: 30,
            security: SecurityLevel::Bits128,
            min_log_n: 12,
        }
    }

    #[test]
    fn every_choice_is_inside_the_security_table() {
        for security in [
            SecurityLevel::Bits128,
            SecurityLevel::Bits192,
            SecurityLevel::Bits256,
        ] {
            for depth in 1..=20 {
                let req = Requirements {
                    security,
                    ..req(depth)
                };
                for choice in candidates(req).unwrap() {
                    check_choice(&choice, depth, security);
                }
                check_choice(&derive(req).unwrap(), depth, security);
            }
        }
    }

    /// A higher level costs ring: a depth that fits N = 2^14 at 128 bits
    /// needs N = 2^15 at 256 (237 bits at 2^14 against 438).
    #[test]
    fn a_higher_level_takes_a_larger_ring() {
        let at = |security| derive(Requirements { security, ..req(8) }).unwrap();
        let (low, high) = (at(SecurityLevel::Bits128), at(SecurityLevel::Bits256));
        assert!(high.log_n > low.log_n, "{low:?} {high:?}");
        assert_eq!(high.security_bits, 256);
        let mut forged = high.clone();
        forged.log_n = low.log_n;
        assert!(forged.build().is_err(), "{forged:?}");
    }

    fn check_choice(choice: &ParameterChoice, depth: usize, security: SecurityLevel) {
        assert!(
            choice.log_qp() <= security.max_log_qp(choice.log_n).unwrap(),
            "{choice:?}"
        );
        assert!(choice
            .q_bits
            .iter()
            .chain(&choice.p_bits)
            .all(|&b| b <= MAX_PRIME_BITS));
        assert_eq!(choice.q_bits.len(), depth + 1);
        let params = choice.build().unwrap();
        assert!(params.log_qp() <= security.max_log_qp(choice.log_n).unwrap() as f64);
        // P covers the largest key-switching digit (the one holding q_0).
        let largest_digit: u32 = choice.q_bits.iter().take(choice.p_bits.len()).sum();
        assert!(
            choice.p_bits.iter().sum::<u32>() >= largest_digit,
            "{choice:?}"
        );
    }

    #[test]
    fn candidates_share_the_smallest_ring_and_trade_scale_for_smaller_keys() {
        let all = candidates(req(10)).unwrap();
        assert!(all.len() >= 3, "{all:?}");
        assert!(all.iter().all(|c| c.log_n == 14));
        assert!(all.windows(2).all(|w| w[0].log_scale >= w[1].log_scale));
        let smallest = all.iter().map(|c| c.switching_key_limbs()).min().unwrap();
        assert!(smallest < all[0].switching_key_limbs(), "{all:?}");
        // One special prime: a digit per q prime.
        assert_eq!(all[0].p_bits.len(), 1);
        assert_eq!(all[0].digits(), 11);
        assert_eq!(all[0].switching_key_limbs(), 11 * 12);
    }

    /// A fixed output noise of 2^20 integer units: error 2^(20 - scale).
    fn fixed_noise(all: &[ParameterChoice]) -> impl FnMut(usize) -> Result<f64, ()> + '_ {
        |i| Ok((20.0 - all[i].log_scale as f64).exp2())
    }

    #[test]
    fn the_smallest_keys_that_keep_the_precision_are_chosen() {
        let all = candidates(req(10)).unwrap();
        let allowed = (20.0 - all[0].log_scale as f64 + 3.0).exp2();
        let choice = choose_by_precision(&all, allowed, fixed_noise(&all)).unwrap();
        assert!(choice.meets);
        let chosen = &all[choice.chosen];
        assert!(chosen.log_scale + 3 >= all[0].log_scale);
        // Nothing within 3 bits of the top scale has smaller keys.
        assert!(all
            .iter()
            .filter(|c| c.log_scale + 3 >= all[0].log_scale)
            .all(|c| c.switching_key_limbs() >= chosen.switching_key_limbs()));
        // The most precise, then the prediction confirmed: two dry runs.
        assert_eq!(choice.measured.len(), 2, "{choice:?}");
        assert_eq!(choice.measured[0].candidate, 0);
    }

    #[test]
    fn a_candidate_whose_noise_grows_beyond_the_prediction_is_passed_over() {
        let all = candidates(req(10)).unwrap();
        let allowed = (20.0 - all[0].log_scale as f64 + 8.0).exp2();
        let cheapest = choose_by_precision(&all, allowed, fixed_noise(&all))
            .unwrap()
            .chosen;
        assert_ne!(cheapest, 0);
        // The cheapest misses when measured: the next cheapest is taken.
        let mut fixed = fixed_noise(&all);
        let choice = choose_by_precision(&all, allowed, |i| {
            if i == cheapest {
                Ok(1e9)
            } else {
                fixed(i)
            }
        })
        .unwrap();
        assert!(choice.meets);
        assert_ne!(choice.chosen, cheapest);
        assert_eq!(choice.measured.len(), 3, "{choice:?}");
        assert!(all[choice.chosen].switching_key_limbs() >= all[cheapest].switching_key_limbs());
    }

    #[test]
    fn without_enough_precision_the_most_precise_is_kept_and_said() {
        let all = candidates(req(10)).unwrap();
        let choice = choose_by_precision(&all, 1e-30, fixed_noise(&all)).unwrap();
        assert_eq!((choice.chosen, choice.meets), (0, false));
        assert_eq!(choice.measured.len(), 1);
        let failed = choose_by_precision(&all, 1.0, |_| Err::<f64, _>("dry run failed"));
        assert_eq!(failed.unwrap_err(), "dry run failed");
    }

    #[test]
    fn deeper_plans_need_larger_rings() {
        assert_eq!(derive(req(3)).unwrap().log_n, 13);
        assert_eq!(derive(req(10)).unwrap().log_n, 14);
        assert!(derive(req(100)).is_err());
    }

    #[test]
    fn a_bootstrapping_chain_fills_the_128_bit_bound_at_n_2_16() {
        let shape = heman_ckks::BootstrappingParameters::new(14);
        let choice = bootstrapping_choice(&shape, 6, 40, SecurityLevel::Bits128).unwrap();
        let bound = SecurityLevel::Bits128.max_log_qp(16).unwrap();
        assert_eq!(choice.log_n, 16);
        assert!(
            choice.log_qp() <= bound && choice.log_qp() + 34 > bound,
            "{choice:?}"
        );
        let levels = compute_levels(&choice, &shape);
        assert!(levels >= 6 && choice.log_scale >= 32, "{levels} {choice:?}");
        assert_eq!(choice.q_bits[0], 60);
        assert_eq!(
            choice.q_bits[1..=levels],
            vec![choice.log_scale; levels][..]
        );
        // P is a digit of the largest primes and one prime more.
        let p: u32 = choice.p_bits.iter().sum();
        assert!(p >= 9 * 60, "{p}");
        let params = choice.build().unwrap();
        assert_eq!(params.max_level() - shape.depth(), levels);
        assert!(heman_ckks::Bootstrapper::new(
            &params,
            heman_ckks::BootstrappingParameters {
                encode_diagonals_when_used: true,
                ..shape
            }
        )
        .is_ok());
        // The networks' circuit (no arcsine) leaves two more levels, at a
        // larger scale, in the same three digits.
        let networks = crate::ckks::plan::Bootstrapping::for_networks(14).circuit();
        let wide = bootstrapping_choice(&networks, 6, 40, SecurityLevel::Bits128).unwrap();
        assert_eq!(compute_levels(&wide, &networks), levels + 2);
        assert_eq!(wide.digits(), choice.digits());
        assert!(
            wide.log_qp() <= bound && wide.log_scale >= choice.log_scale,
            "{wide:?}"
        );
        // A stage deeper than the compute levels has no chain.
        let error = bootstrapping_choice(&shape, 40, 40, SecurityLevel::Bits128).unwrap_err();
        assert!(error.to_string().contains("needs 40"), "{error}");
    }
}
