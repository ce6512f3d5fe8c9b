//! What a bootstrapping circuit is made of: slot count, the EvalMod approximation and how
//! many levels each homomorphic DFT takes.

use crate::error::{CkksError, Result};
use crate::params::{CkksParameters, EPHEMERAL_SECRET_128};
use crate::polynomial::plan::chebyshev_depth;

/// The shape of a bootstrapping circuit. The defaults: K = 16 and three levels per DFT as in
/// the published parameter sets of Bossuat, Mouchet, Troncoso-Pastoriza and Hubaux
/// (EUROCRYPT 2021, Table 3); a cosine of degree 60 with two double-angle steps (Han-Ki
/// 2020), which at the same depth as their degree 30 with three steps approximates the sine
/// to 4e-14 instead of 7e-9 (measured by `eval_mod_removes_the_multiples_of_q0`); an arcsine
/// of degree 3; encapsulation with an ephemeral secret of weight 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrappingParameters {
    /// log2 of the slots refreshed (at most log2(N/2); fewer is "sparse" packing, whose
    /// message lives in a subring and costs log2(N/2) - log_slots extra rotations).
    pub log_slots: u32,
    /// EvalMod's interval: ModRaise adds q_0 I with |I| < k (Sec. 2.2 of Cheon-Han-Kim-Kim-Song
    /// 2018); k must exceed the largest |I| the secret's weight allows.
    pub k: usize,
    /// Double-angle steps r: the cosine is interpolated on a range 2^r times narrower.
    pub double_angle: u32,
    /// Degree of the cosine's Chebyshev interpolant.
    pub cosine_degree: usize,
    /// log2(q_0 / largest |message| * scale): the sine is close to linear on the message
    /// only when this is large, and its curvature, (2 pi 2^-ratio)^2 / 6 relative, is the
    /// error the arcsine removes.
    pub log_message_ratio: u32,
    /// Degree of the arcsine polynomial applied after the sine (0: none), which turns
    /// sin(2 pi x) back into 2 pi (x - I) (Lee, Lee, Kim, No, "High-precision bootstrapping
    /// of RNS-CKKS homomorphic encryption using optimal minimax polynomial approximation
    /// and inverse sine function", EUROCRYPT 2021; Lattigo's ArcSineDegree).
    pub arcsine_degree: usize,
    /// Levels of CoeffToSlot (stages are merged into this many linear transforms).
    pub coeffs_to_slots_levels: usize,
    /// Levels of SlotToCoeff.
    pub slots_to_coeffs_levels: usize,
    /// Hamming weight of the ephemeral secret of sparse-secret encapsulation, or `None` to
    /// raise under the secret key itself (only sensible when that secret is sparse: a
    /// uniform ternary secret makes |I| grow like sqrt(N)).
    pub ephemeral_weight: Option<usize>,
    /// Keep the DFT matrices' diagonals as slot values and encode each when it is used,
    /// instead of encoding them all once: at N = 2^16 a few hundred MiB instead of gigabytes,
    /// for some time per bootstrap (measured in the README).
    pub encode_diagonals_when_used: bool,
}

impl BootstrappingParameters {
    /// The defaults for `log_slots` slots.
    pub fn new(log_slots: u32) -> Self {
        Self {
            log_slots,
            k: 16,
            double_angle: 2,
            cosine_degree: 60,
            log_message_ratio: 10,
            arcsine_degree: 3,
            coeffs_to_slots_levels: 3,
            slots_to_coeffs_levels: 3,
            ephemeral_weight: Some(EPHEMERAL_SECRET_128.1),
            encode_diagonals_when_used: false,
        }
    }

    /// Number of slots refreshed.
    pub fn slots(&self) -> usize {
        1 << self.log_slots
    }

    /// Whether the slots refreshed are at most a quarter of N (sparse packing: the message
    /// lives in a subring, and real and imaginary parts share one ciphertext of 2n slots).
    pub fn is_sparse(&self, params: &CkksParameters) -> bool {
        2 * self.slots() <= params.slots()
    }

    /// Levels of the cosine's series.
    pub fn cosine_depth(&self) -> usize {
        chebyshev_depth(self.cosine_degree)
    }

    /// Levels of the arcsine's series (0 without it).
    pub fn arcsine_depth(&self) -> usize {
        if self.arcsine_degree == 0 {
            0
        } else {
            chebyshev_depth(self.arcsine_degree)
        }
    }

    /// Levels EvalMod consumes: the cosine's series, the double-angle steps and the arcsine.
    pub fn eval_mod_depth(&self) -> usize {
        self.cosine_depth() + self.double_angle as usize + self.arcsine_depth()
    }

    /// The integer the sine is multiplied by before the arcsine, so that its values fill
    /// [-1, 1]: floor(2^ratio / 2 pi) (1 without the arcsine).
    pub fn arcsine_gain(&self) -> i64 {
        if self.arcsine_degree == 0 {
            1
        } else {
            ((2f64.powi(self.log_message_ratio as i32) / (2.0 * std::f64::consts::PI)).floor()
                as i64)
                .max(1)
        }
    }

    /// Levels the whole circuit consumes: a ciphertext comes out at level L - depth.
    pub fn depth(&self) -> usize {
        self.coeffs_to_slots_levels + self.eval_mod_depth() + self.slots_to_coeffs_levels
    }

    /// Checks the circuit against `params`.
    pub fn check(&self, params: &CkksParameters) -> Result<()> {
        let bad = |m: String| Err(CkksError::InvalidParameters(m));
        if self.log_slots == 0 || self.log_slots + 1 > params.log_n() {
            return bad(format!(
                "bootstrapping {} slots: between 2 and N/2 = {}",
                self.slots(),
                params.slots()
            ));
        }
        if self.k == 0 || self.cosine_degree == 0 {
            return bad("EvalMod needs k >= 1 and a cosine of degree >= 1".into());
        }
        if !(3..=40).contains(&self.log_message_ratio) {
            return bad(format!(
                "log_message_ratio {} outside 3..=40",
                self.log_message_ratio
            ));
        }
        let stages = self.log_slots as usize;
        for (name, levels) in [
            ("CoeffToSlot", self.coeffs_to_slots_levels),
            ("SlotToCoeff", self.slots_to_coeffs_levels),
        ] {
            if levels == 0 || levels > stages {
                return bad(format!(
                    "{name} in {levels} levels: between 1 and {stages} for {} slots",
                    self.slots()
                ));
            }
        }
        if self.depth() > params.max_level() {
            return bad(format!(
                "bootstrapping consumes {} levels ({} CoeffToSlot, {} EvalMod, {} SlotToCoeff) but the chain has {}",
                self.depth(),
                self.coeffs_to_slots_levels,
                self.eval_mod_depth(),
                self.slots_to_coeffs_levels,
                params.max_level()
            ));
        }
        Ok(())
    }
}
