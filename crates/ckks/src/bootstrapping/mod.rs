//! CKKS bootstrapping (Cheon-Han-Kim-Kim-Song, EUROCRYPT 2018): a ciphertext at the bottom
//! of the chain is brought back to a high level with the same message, so a network of any
//! depth runs in one ring.
//!
//! The circuit, in order:
//! 1. ModRaise: the ciphertext modulo q_0 read modulo Q_L decrypts
//!    to t = m + q_0 I. With encapsulation (Bossuat, Troncoso-Pastoriza, Hubaux, ACNS 2022)
//!    the ciphertext is first switched to an ephemeral secret of low weight, which keeps |I|
//!    small whatever the secret key's distribution, and switched back after the raise.
//! 2. SubSum (sparse packing only, Chen-Chillotti-Song 2019 Sec. 5): the trace onto the
//!    subring the message lives in, by log2(N / 2n) rotations.
//! 3. CoeffToSlot: the inverse of the encoding map, as a few grouped butterfly stages
//!    (`dft`); the coefficients of t / q_0 land in the slots (bit-reversed), the real and
//!    imaginary halves separated by one conjugation.
//! 4. EvalMod: sin(2 pi t / q_0) / 2 pi ~ m / q_0 removes I.
//! 5. SlotToCoeff: the encoding map, putting the refreshed coefficients back.
//!
//! Every constant (1 / k, the factor the trace adds, 1 / 2 pi) is folded into the DFT
//! matrices, and the output keeps the input's scale.

mod dft;
mod eval_mod;
mod keys;
mod mod_raise;
mod parameters;
#[cfg(test)]
mod tests;

pub use keys::{BootstrappingKeys, BootstrappingKeysRef, EncapsulationKeys};
pub use parameters::BootstrappingParameters;

use crate::encoding::Encoder;
use crate::error::{CkksError, Result};
use crate::evaluator::Evaluator;
use crate::keys::SwitchingKey;
use crate::linear_transform::{EncodedLinearTransform, LinearTransform};
use crate::params::CkksParameters;
use crate::plaintext::Ciphertext;
use crate::polynomial::PolynomialEvaluator;
use eval_mod::EvalMod;
use num_complex::Complex64;
use std::f64::consts::PI;

/// A bootstrapping circuit for one parameter set, its DFT matrices encoded once.
pub struct Bootstrapper {
    params: CkksParameters,
    shape: BootstrappingParameters,
    eval: Evaluator,
    poly: PolynomialEvaluator,
    coeffs_to_slots: Vec<EncodedLinearTransform>,
    eval_mod: EvalMod,
    slots_to_coeffs: Vec<EncodedLinearTransform>,
    /// The evaluator of the encapsulation ring (q_0 and the first special prime).
    encapsulation: Option<Evaluator>,
}

/// `groups` scaled so that their product is scaled by `c > 0` (each by the same
/// c^(1/len): spreading the constant keeps every encoded diagonal near 1 in magnitude).
fn spread_constant(groups: Vec<LinearTransform>, c: f64) -> Vec<LinearTransform> {
    let each = c.powf(1.0 / groups.len() as f64);
    groups
        .iter()
        .map(|g| g.scaled(Complex64::new(each, 0.0)))
        .collect()
}

/// CoeffToSlot's maps, one per level: t / q_0 -> (t / q_0) / (k * trace factor), halved for
/// the conjugation that separates real and imaginary parts (sparse: real parts in the
/// first n slots, imaginary parts in the next n).
fn coeffs_to_slots_maps(
    params: &CkksParameters,
    shape: &BootstrappingParameters,
) -> Result<Vec<LinearTransform>> {
    let n = shape.slots();
    let mut groups = dft::group(
        &dft::coeffs_to_slots_factors(n)?,
        shape.coeffs_to_slots_levels,
        false,
    )?;
    let half = Complex64::new(0.5, 0.0);
    let last = groups.pop().expect("at least one group");
    groups.push(if shape.is_sparse(params) {
        let mut d = vec![half; 2 * n];
        for x in &mut d[n..] {
            *x = Complex64::new(0.0, -0.5);
        }
        last.then(&LinearTransform::diagonal(d)?)?
    } else {
        last.scaled(half)
    });
    let trace_factor = (params.slots() / n) as f64;
    Ok(spread_constant(
        groups,
        1.0 / (shape.k as f64 * trace_factor),
    ))
}

/// SlotToCoeff's maps, one per level: sin(2 pi t / q_0), times EvalMod's `gain`, -> m / q_0
/// (sparse: real parts in the first n slots and imaginary in the next merged first into
/// re + i im in both).
fn slots_to_coeffs_maps(
    params: &CkksParameters,
    shape: &BootstrappingParameters,
    gain: f64,
) -> Result<Vec<LinearTransform>> {
    let n = shape.slots();
    let mut factors = dft::slots_to_coeffs_factors(n)?;
    if shape.is_sparse(params) {
        let one = Complex64::new(1.0, 0.0);
        let i = Complex64::new(0.0, 1.0);
        let mut merge = LinearTransform::zero(2 * n)?;
        for p in 0..n {
            merge.add_entry(0, p, one);
            merge.add_entry(n as i64, p, i);
            merge.add_entry(n as i64, p + n, one);
            merge.add_entry(0, p + n, i);
        }
        factors[0] = merge.then(&factors[0])?;
    }
    let groups = dft::group(&factors, shape.slots_to_coeffs_levels, true)?;
    Ok(spread_constant(groups, 1.0 / (2.0 * PI * gain)))
}

impl Bootstrapper {
    /// Builds the circuit: checks `shape` against `params` and encodes the DFT matrices at
    /// the levels they will run at.
    pub fn new(params: &CkksParameters, shape: BootstrappingParameters) -> Result<Self> {
        shape.check(params)?;
        let enc = std::sync::Arc::new(Encoder::new(params));
        let prepare = |t: &LinearTransform, level: usize, scale: f64| {
            if shape.encode_diagonals_when_used {
                EncodedLinearTransform::encoded_when_used(enc.clone(), t, level, scale)
            } else {
                EncodedLinearTransform::new(&enc, t, level, scale)
            }
        };
        let top = params.max_level();
        let q = |l: usize| params.q()[l] as f64;

        // The first level takes the scale from q_0 (after ModRaise) to the EvalMod scale,
        // the prime EvalMod starts on; the others keep it.
        let eval_mod_level = top - shape.coeffs_to_slots_levels;
        let eval_mod_scale = q(eval_mod_level);
        let mut scale = q(0);
        let mut coeffs_to_slots = Vec::new();
        for (i, g) in coeffs_to_slots_maps(params, &shape)?.iter().enumerate() {
            let level = top - i;
            let pt_scale = q(level) * eval_mod_scale / scale;
            coeffs_to_slots.push(prepare(g, level, pt_scale)?);
            scale = eval_mod_scale;
        }

        // EvalMod's output scale, as its double-angle steps leave it.
        let eval_mod = EvalMod::new(&shape)?;
        let mut level = eval_mod_level - shape.cosine_depth();
        for _ in 0..shape.double_angle {
            scale = scale * scale / q(level);
            level -= 1;
        }
        level -= shape.arcsine_depth();

        // SlotToCoeff's last level brings the scale to q_0: the integer content is then m
        // itself (the output is read at the input's scale).
        let groups = slots_to_coeffs_maps(params, &shape, eval_mod.gain())?;
        let mut slots_to_coeffs = Vec::new();
        let last = groups.len() - 1;
        for (i, g) in groups.iter().enumerate() {
            let pt_scale = if i == last {
                q(level) * q(0) / scale
            } else {
                q(level)
            };
            slots_to_coeffs.push(prepare(g, level, pt_scale)?);
            scale = scale * pt_scale / q(level);
            level -= 1;
        }
        Ok(Self {
            params: params.clone(),
            shape,
            eval: Evaluator::new(params),
            poly: PolynomialEvaluator::new(params),
            coeffs_to_slots,
            eval_mod,
            slots_to_coeffs,
            encapsulation: match shape.ephemeral_weight {
                Some(w) => Some(Evaluator::new(&params.encapsulation(w)?)),
                None => None,
            },
        })
    }

    /// The circuit's shape.
    pub fn shape(&self) -> &BootstrappingParameters {
        &self.shape
    }

    /// The level a bootstrapped ciphertext comes out at.
    pub fn output_level(&self) -> usize {
        self.params.max_level() - self.shape.depth()
    }

    /// The largest amplification (see [`Bootstrapper::bootstrap_amplified`]) for messages
    /// of magnitude at most `max_abs` at `scale`: q_0 / (2^log_message_ratio * max_abs *
    /// scale), rounded down, at least 1.
    pub fn amplification_for(&self, max_abs: f64, scale: f64) -> u64 {
        let range = self.params.q()[0] as f64 / 2f64.powi(self.shape.log_message_ratio as i32);
        let a = (range / (max_abs * scale)).floor();
        if a.is_finite() && a >= 1.0 {
            a.min(u32::MAX as f64) as u64
        } else {
            1
        }
    }

    /// Rotation steps of the SubSum trace.
    fn trace_steps(&self) -> Vec<i64> {
        let n = self.shape.slots();
        let mut steps = Vec::new();
        let mut s = n;
        while s < self.params.slots() {
            steps.push(s as i64);
            s *= 2;
        }
        steps
    }

    /// The rotation steps whose Galois keys bootstrapping needs (conjugation too).
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut steps = self.trace_steps();
        for t in self.coeffs_to_slots.iter().chain(&self.slots_to_coeffs) {
            steps.extend(t.rotation_steps());
        }
        let half = self.params.slots() as i64;
        let mut steps: Vec<i64> = steps.into_iter().map(|s| s.rem_euclid(half)).collect();
        steps.sort_unstable();
        steps.dedup();
        steps.retain(|&s| s != 0);
        steps
    }

    /// Refreshes `ct` (at any level; it is first dropped to level 0): the same message at
    /// level [`Bootstrapper::output_level`] and the input's scale. The message's slots should
    /// be at most about 1 in magnitude times q_0 / (scale * 2^8): the sine is close to linear
    /// only near 0, and its curvature is the error's main term.
    pub fn bootstrap(&self, ct: &Ciphertext, keys: &BootstrappingKeys) -> Result<Ciphertext> {
        self.bootstrap_amplified(ct, keys.as_ref(), 1)
    }

    /// As [`Bootstrapper::bootstrap`] for a message `amplification` times smaller than the
    /// circuit's range: it is multiplied by `amplification` (an integer: no level) before
    /// ModRaise and divided by it again in EvalMod's last polynomial (its output scale: no
    /// level), so that EvalMod's error, fixed relative to q_0, is `amplification` times
    /// smaller relative to the message. The amplified message, `amplification * |m| *
    /// scale`, should stay below q_0 / 2^log_message_ratio.
    pub fn bootstrap_amplified(
        &self,
        ct: &Ciphertext,
        keys: BootstrappingKeysRef<'_>,
        amplification: u64,
    ) -> Result<Ciphertext> {
        let e = &self.eval;
        if ct.degree() != 1 {
            return Err(CkksError::InvalidDegree(ct.degree()));
        }
        let gain = i64::try_from(amplification)
            .ok()
            .filter(|&a| a >= 1)
            .ok_or_else(|| {
                CkksError::InvalidParameters(format!(
                    "amplification {amplification}: between 1 and 2^63"
                ))
            })?;
        let (rlk, gk) = (keys.relinearization, keys.galois);
        let input_scale = ct.scale();
        let mut bottom = e.drop_to_level(ct, 0)?;
        if gain > 1 {
            bottom = e.mul_integer(&bottom, gain);
        }
        let mut x =
            match (&self.encapsulation, keys.encapsulation) {
                (None, _) => mod_raise::mod_raise(&self.params, &bottom),
                (Some(small), Some(k)) => {
                    e.check_fingerprint(&k.fingerprint)?;
                    let sparse = switch_key(small, &bottom, &k.dense_to_sparse);
                    let raised = mod_raise::mod_raise(&self.params, &sparse);
                    switch_key(e, &raised, &k.sparse_to_dense)
                }
                (Some(_), None) => return Err(CkksError::InvalidParameters(
                    "the bootstrapping circuit encapsulates but no encapsulation keys were given"
                        .into(),
                )),
            };
        for step in self.trace_steps() {
            x = e.add(&x, &e.rotate(&x, step, gk)?)?;
        }
        for t in &self.coeffs_to_slots {
            x = e.rescale_owned(e.apply_linear_transform(&x, t, gk)?)?;
        }
        let conj = e.conjugate(&x, gk)?;
        let shrink = amplification as f64;
        let mut y = if self.shape.is_sparse(&self.params) {
            let real_and_imaginary = e.add(&x, &conj)?;
            self.eval_mod
                .evaluate(e, &self.poly, &real_and_imaginary, rlk, shrink)?
        } else {
            let re = e.add(&x, &conj)?;
            let im = e.mul_by_i(&e.sub(&conj, &x)?);
            let re = self.eval_mod.evaluate(e, &self.poly, &re, rlk, shrink)?;
            let im = self.eval_mod.evaluate(e, &self.poly, &im, rlk, shrink)?;
            e.add(&re, &e.mul_by_i(&im))?
        };
        for t in &self.slots_to_coeffs {
            y = e.rescale_owned(e.apply_linear_transform(&y, t, gk)?)?;
        }
        // The integer content is now m itself: read it at the input's scale.
        y.set_scale(input_scale);
        Ok(y)
    }
}

/// (c_0, c_1) under s' to (c_0 + u_0, u_1) under s, with `key` from s' to s.
fn switch_key(eval: &Evaluator, ct: &Ciphertext, key: &SwitchingKey) -> Ciphertext {
    let ring = eval.params().ring();
    let basis = eval.params().q_basis(ct.level);
    let (u0, u1) = eval.key_switch(&ct.parts[1], ct.level, key);
    let mut c0 = ct.parts[0].prefix(ct.level + 1);
    ring.add_assign(&mut c0, &u0, &basis);
    Ciphertext {
        parts: vec![c0, u1],
        level: ct.level,
        scale: ct.scale,
        seed: None,
    }
}
