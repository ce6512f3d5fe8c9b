//! Sizing of the noise flooding applied to output ciphertexts before they
//! leave the model owner (model-owner privacy: an output's randomness and
//! noise should say nothing about the weights that shaped them).
//!
//! Li, Micciancio, Schultz and Sorrell, "Securing Approximate Homomorphic
//! Encryption Using Differential Privacy" (CRYPTO 2022, section 4.4): Gaussian
//! flooding of standard deviation `sigma = sqrt(24 N a) 2^(s/2) B` hides noise
//! bounded by `B` (coefficient domain) over `a` decryptions with `s` bits of
//! statistical security (any adversary succeeds with probability at most
//! 2^-s), by a Rényi-divergence argument instead of statistical distance
//! (which would need 2^s B).
//!
//! The flooded output decrypts with about `sigma sqrt(N/2) / scale` more error
//! per slot, so `s` costs `s/2 + log2 sqrt(24 N a)` bits of output precision
//! above the computation's own noise. Measured on HE-MAN's models at scales of
//! 2^28 to 2^31, the output noise `B` is 2^15 to 2^20, about 2^-11 of the scale
//! (see `heman keyparams`): s = 40 would need a flooding far above the scale,
//! destroying the output. So heman offers two sizings: flooding at the noise
//! bound (the default: the output's noise is drowned in fresh Gaussian noise
//! of its measured size, at a cost of a few bits of precision, without a
//! provable `s`; or at a tail bound drawn from the dry runs,
//! [`MeasuredNoise::bound`], on request), or a requested `s` over that bound,
//! refused with the precision it would need when the parameters cannot carry
//! it.

use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};

/// `-log2` of the probability that one coefficient of the outputs a key may
/// decrypt exceeds the noise bound ([`MeasuredNoise::bound`]).
pub const TAIL_BITS: f64 = 40.0;

/// `log2 a` of the statistical sizing: decryptions covered (output
/// ciphertexts summed over inferences). The server's per-key query budget
/// (`--queries-per-key`) defaults to it; new keys do not reset what earlier
/// answers taught, since the secret they protect is the weights.
pub const DECRYPTIONS_LOG2: u32 = 10;

/// Bits of precision, relative to the largest calibrated output, that the
/// flooded output must keep (the argmax of logits a few percent apart).
pub const KEPT_PRECISION_BITS: f64 = 8.0;

/// The spread of one dry run's output noise: its deviation on the
/// coefficients that carry it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSpread {
    /// The standard deviation on the support.
    pub deviation: f64,
    /// How many coefficients carry the noise (estimated; at most all).
    pub support: f64,
}

impl NoiseSpread {
    /// The spread of `errors` (one input's output noise coefficients, all
    /// output ciphertexts together). The noise need not cover every
    /// coefficient: a plan that replicates values across slots makes it
    /// periodic, which in the coefficient domain concentrates it on a few
    /// coefficients (measured on the digits example: on about one in 32,
    /// the largest 34 times the root mean square over all). The support is
    /// estimated as `3 (sum e^2)^2 / sum e^4`, which is the support's size
    /// for Gaussian noise on it (fourth moment `3 sigma^4`), and the
    /// deviation is taken on it.
    pub fn of(errors: &[f64]) -> Self {
        let (s2, s4) = errors
            .iter()
            .fold((0.0, 0.0), |(s2, s4), e| (s2 + e * e, s4 + e.powi(4)));
        if s2 == 0.0 {
            return Self {
                deviation: 0.0,
                support: 1.0,
            };
        }
        let support = (3.0 * s2 * s2 / s4).clamp(1.0, errors.len().max(1) as f64);
        Self {
            deviation: (s2 / support).sqrt(),
            support,
        }
    }

    /// A bound on every coefficient of the `a` = 2^[`DECRYPTIONS_LOG2`]
    /// outputs a key may decrypt: CKKS output noise coefficients are sums
    /// of many independent terms and behave as centred Gaussians (Costache,
    /// Curtis, Hales, Murphy, Ogilchrist, Player, "On the precision loss in
    /// approximate homomorphic encryption", SAC 2023), so
    /// `P(|e| > t deviation) <= 2 exp(-t^2/2)`, and over the `support * a`
    /// coefficients that carry noise `t^2 = 2 ln(2 support a 2^TAIL_BITS)`
    /// fails with probability at most 2^-[`TAIL_BITS`].
    pub fn bound(&self) -> f64 {
        let events_log2 = 1.0 + self.support.max(1.0).log2() + DECRYPTIONS_LOG2 as f64 + TAIL_BITS;
        (2.0 * std::f64::consts::LN_2 * events_log2).sqrt() * self.deviation
    }
}

/// What encrypted dry runs measured of the output noise, in the
/// coefficient domain (units of the integer ring).
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredNoise {
    /// The largest |coefficient| seen.
    pub max: f64,
    /// Each dry run's spread.
    pub spreads: Vec<NoiseSpread>,
}

impl MeasuredNoise {
    /// The bound `B` the flooding is sized on: the largest of the dry
    /// runs' tail bounds ([`NoiseSpread::bound`]), never below the largest
    /// coefficient seen. What it assumes is the Gaussian shape and that the
    /// calibration inputs' spread is representative, not that they were the
    /// worst inputs.
    pub fn bound(&self) -> f64 {
        self.spreads
            .iter()
            .map(NoiseSpread::bound)
            .fold(self.max, f64::max)
            .max(1.0)
    }

    /// The noise `target` floods: the largest seen for
    /// [`FloodingTarget::NoiseBound`], else the tail bound.
    pub fn sizing_bound(&self, target: FloodingTarget) -> f64 {
        match target {
            FloodingTarget::NoiseBound => self.max.max(1.0),
            FloodingTarget::TailBound | FloodingTarget::Statistical(_) => self.bound(),
        }
    }
}

/// How large the flooding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FloodingTarget {
    /// Gaussian of deviation the largest output noise the dry runs showed
    /// (the default: see [`FloodingTarget::TailBound`] for its cost).
    NoiseBound,
    /// Gaussian of deviation the tail bound drawn from the dry runs
    /// ([`MeasuredNoise::bound`]): covers inputs noisier than the two
    /// measured, for about 1.5 bits of output precision (on the digits
    /// example the parameters then sometimes grow from N = 2^13 to 2^14 to
    /// keep 8 bits: docs/SECURITY.md).
    TailBound,
    /// The LMSS22 sizing for `s` bits of statistical security.
    Statistical(u32),
}

/// Each dry run's output noise, coefficient by coefficient: what the
/// flooding is sized on.
#[derive(Debug, Clone, PartialEq)]
pub struct CoefficientNoise {
    /// The ring degree N: entry `i` of a run is coefficient `i mod N` of
    /// its output ciphertext.
    pub n: usize,
    /// Per dry run, decrypted minus exact output coefficients (unscaled),
    /// every output ciphertext in order.
    pub runs: Vec<Vec<f64>>,
}

impl CoefficientNoise {
    /// The largest |coefficient| of every run.
    pub fn max(&self) -> f64 {
        self.runs
            .iter()
            .flatten()
            .fold(0.0f64, |m, e| m.max(e.abs()))
    }

    /// The measurement of the coefficients at multiples of `stride` (`on`)
    /// or of the others.
    pub fn class(&self, stride: usize, on: bool) -> MeasuredNoise {
        let n = self.n.max(1);
        let classes: Vec<Vec<f64>> = self
            .runs
            .iter()
            .map(|run| {
                run.iter()
                    .enumerate()
                    .filter(|(i, _)| (i % n).is_multiple_of(stride) == on)
                    .map(|(_, e)| *e)
                    .collect()
            })
            .collect();
        MeasuredNoise {
            max: classes.iter().flatten().fold(0.0f64, |m, e| m.max(e.abs())),
            spreads: classes.iter().map(|c| NoiseSpread::of(c)).collect(),
        }
    }
}

/// The flooding of one class of output coefficients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFlooding {
    /// `log2` of the largest output noise an encrypted dry run on
    /// calibration inputs measured on these coefficients.
    pub measured_noise_log2: f64,
    /// `log2` of the bound `B` drawn from the measurement
    /// ([`MeasuredNoise::bound`]), which the flooding is sized on.
    pub noise_bound_log2: f64,
    /// `log2 sigma` of the Gaussian added to these coefficients.
    pub sigma_log2: f64,
}

impl ClassFlooding {
    /// The flooding for `target` of coefficients whose noise was `measured`,
    /// in a ring of 2^`log_n`.
    fn sized(target: FloodingTarget, log_n: u32, measured: &MeasuredNoise) -> Self {
        Self {
            measured_noise_log2: measured.max.max(1.0).log2(),
            noise_bound_log2: measured.bound().log2(),
            sigma_log2: OutputFlooding::sigma_log2_for(
                target,
                log_n,
                measured.sizing_bound(target),
            ),
        }
    }

    /// The LMSS22 statistical security this flooding gives its class.
    fn statistical_security(&self, log_n: u32) -> f64 {
        2.0 * (self.sigma_log2 - self.noise_bound_log2 - lmss22_log2(log_n))
    }
}

/// The flooding of every output ciphertext, recorded in keyparams: the
/// coefficients at multiples of `stride` (every coefficient when it is 1)
/// flooded as `on_stride` says, the others as `off_stride` says, never
/// more widely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFlooding {
    /// The sizing chosen.
    pub target: FloodingTarget,
    /// The coefficients at multiples of `stride`, where a plan whose output
    /// repeats with period `P` slots concentrates its noise (`stride` =
    /// N/2P: its last rotate-and-sum is a trace onto that subring).
    pub on_stride: ClassFlooding,
    /// A power of two dividing N.
    pub stride: u32,
    /// The other coefficients (none when `stride` is 1).
    pub off_stride: Option<ClassFlooding>,
    /// The LMSS22 statistical security the flooding gives, the least of the
    /// classes', for `B` their noise bounds and `a` =
    /// 2^[`DECRYPTIONS_LOG2`] (negative: no provable hiding).
    pub statistical_security: f64,
    /// Expected added error per output slot, in output units.
    pub slot_error: f64,
}

/// `log2 sqrt(24 N a)`, the LMSS22 factor beyond `2^(s/2) B`.
fn lmss22_log2(log_n: u32) -> f64 {
    0.5 * (24f64.log2() + log_n as f64 + DECRYPTIONS_LOG2 as f64)
}

impl OutputFlooding {
    /// The flooding for `target`, for outputs of `noise` at scale
    /// 2^`log_scale` in a ring of 2^`log_n`, whose values reach `output_max`
    /// in magnitude ([`OutputFlooding::least`]). Refuses a statistical
    /// target whose flooding would leave fewer than [`KEPT_PRECISION_BITS`]
    /// bits of the output.
    pub fn size(
        target: FloodingTarget,
        log_n: u32,
        log_scale: f64,
        noise: &CoefficientNoise,
        output_max: f64,
    ) -> Result<Self> {
        let flooding = Self::least(target, log_n, log_scale, noise);
        let allowed = Self::allowed_slot_error(output_max);
        if let FloodingTarget::Statistical(s) = target {
            if flooding.slot_error > allowed {
                return Err(CompileError::Parameters(format!(
                    "flooding for {s} bits of statistical security (LMSS22) needs sigma = 2^{:.1} over an output noise bound of 2^{:.1} at scale 2^{log_scale:.0}: it would add an error of about {:.3e} per output (outputs reach {output_max:.3}), {:.1} bits more precision than these parameters have; choose a smaller --flooding-security or the default flooding at the noise bound",
                    flooding.on_stride.sigma_log2,
                    flooding.on_stride.noise_bound_log2,
                    flooding.slot_error,
                    (flooding.slot_error / allowed).log2()
                )));
            }
        }
        Ok(flooding)
    }

    /// Of the floodings for `target` that size each class of coefficients
    /// (at multiples of a power-of-two stride, and the others) on its own
    /// measured noise, the one that adds the least error per slot. Flooding
    /// every coefficient at the largest noise (stride 1) is one of them,
    /// and is kept unless a split at least halves its error (noise spread
    /// evenly splits at random strides for a few percent); a split whose
    /// off-stride noise exceeds the on-stride noise is not tried.
    pub fn least(
        target: FloodingTarget,
        log_n: u32,
        log_scale: f64,
        noise: &CoefficientNoise,
    ) -> Self {
        let uniform = ClassFlooding::sized(target, log_n, &noise.class(1, true));
        let uniform = Self::with_classes(target, log_n, log_scale, (uniform, 1), None);
        let mut best = uniform.clone();
        for stride in (1..log_n).map(|k| 1usize << k) {
            let on = ClassFlooding::sized(target, log_n, &noise.class(stride, true));
            let off = ClassFlooding::sized(target, log_n, &noise.class(stride, false));
            if off.sigma_log2 > on.sigma_log2 {
                continue;
            }
            let split = Self::with_classes(target, log_n, log_scale, (on, stride), Some(off));
            if split.slot_error < best.slot_error {
                best = split;
            }
        }
        if best.slot_error > uniform.slot_error / 2.0 {
            return uniform;
        }
        best
    }

    /// The flooding of these classes, with its error per slot and security.
    fn with_classes(
        target: FloodingTarget,
        log_n: u32,
        log_scale: f64,
        (on_stride, stride): (ClassFlooding, usize),
        off_stride: Option<ClassFlooding>,
    ) -> Self {
        // A slot's real part sums every coefficient's flooding: its variance
        // is sum sigma_i^2 / 2.
        let n = (1u64 << log_n) as f64;
        let on_count = n / stride as f64;
        let variance = on_count * (2.0 * on_stride.sigma_log2).exp2()
            + off_stride
                .as_ref()
                .map_or(0.0, |c| (n - on_count) * (2.0 * c.sigma_log2).exp2());
        let statistical_security = off_stride
            .iter()
            .map(|c| c.statistical_security(log_n))
            .fold(on_stride.statistical_security(log_n), f64::min);
        Self {
            target,
            on_stride,
            stride: stride as u32,
            off_stride,
            statistical_security,
            slot_error: (variance / 2.0).sqrt() / log_scale.exp2(),
        }
    }

    /// `log2 sigma` of the flooding for `target` over the output noise
    /// `bound` it floods ([`MeasuredNoise::sizing_bound`]) in a ring of
    /// 2^`log_n`.
    pub fn sigma_log2_for(target: FloodingTarget, log_n: u32, bound: f64) -> f64 {
        let bound_log2 = bound.max(1.0).log2();
        match target {
            FloodingTarget::NoiseBound | FloodingTarget::TailBound => bound_log2,
            FloodingTarget::Statistical(s) => lmss22_log2(log_n) + s as f64 / 2.0 + bound_log2,
        }
    }

    /// The largest error per slot that keeps [`KEPT_PRECISION_BITS`] of
    /// outputs reaching `output_max`.
    pub fn allowed_slot_error(output_max: f64) -> f64 {
        output_max.max(1.0) * (-KEPT_PRECISION_BITS).exp2()
    }

    /// The standard deviation of the flooding Gaussian on the coefficients
    /// at multiples of the stride (every coefficient when it is 1).
    pub fn sigma(&self) -> f64 {
        self.on_stride.sigma_log2.exp2()
    }

    /// The standard deviation on the other coefficients.
    pub fn off_stride_sigma(&self) -> f64 {
        self.off_stride
            .as_ref()
            .map_or(self.sigma(), |c| c.sigma_log2.exp2())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One dry run of Gaussian noise of `deviation` on `n` coefficients.
    fn gaussian(n: usize, deviation: f64, seed: u64) -> Vec<f64> {
        let u = heman_testkit::pseudo_random(2 * n, seed, 0.0, 1.0);
        u.chunks(2)
            .map(|p| {
                let (a, b) = (1.0 - p[0], p[1]);
                deviation * (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
            })
            .collect()
    }

    /// Two dry runs of Gaussian noise of `deviation` at N = 2^14.
    fn gaussian_runs(deviation: f64) -> CoefficientNoise {
        CoefficientNoise {
            n: 1 << 14,
            runs: vec![
                gaussian(1 << 14, deviation, 1),
                gaussian(1 << 14, deviation, 2),
            ],
        }
    }

    #[test]
    fn statistical_sizing_follows_lmss22() {
        // N = 2^14, a = 2^10, s = 20, scale 2^50:
        // sqrt(24 * 2^24) = 2^14.29, so sigma = 2^(14.29 + 10) B.
        let noise = gaussian_runs(64.0);
        let f =
            OutputFlooding::size(FloodingTarget::Statistical(20), 14, 50.0, &noise, 10.0).unwrap();
        assert_eq!(f.stride, 1, "noise on every coefficient floods uniformly");
        let bound = noise.class(1, true).bound().log2();
        assert!((f.on_stride.noise_bound_log2 - bound).abs() < 1e-9);
        // The Gaussian tail over 2^14 coefficients and 2^10 decryptions: 8.6
        // deviations.
        assert!((bound - 6.0 - 3.2).abs() < 0.2, "2^{bound}");
        assert!(
            (f.on_stride.sigma_log2 - (bound + 24.29)).abs() < 0.01,
            "{}",
            f.on_stride.sigma_log2
        );
        assert!((f.statistical_security - 20.0).abs() < 1e-9);
        // slot error sigma sqrt(N/2) / scale.
        let slot_error = (f.on_stride.sigma_log2 + 6.5 - 50.0).exp2();
        assert!(
            (f.slot_error / slot_error - 1.0).abs() < 1e-9,
            "{}",
            f.slot_error
        );
    }

    #[test]
    fn noise_concentrated_on_a_subring_is_flooded_there() {
        // As a final rotate-and-sum leaves it: large on the coefficients at
        // multiples of 32, small on the others.
        let noise = CoefficientNoise {
            n: 1 << 14,
            runs: (1..3)
                .map(|seed| {
                    let wide = gaussian(1 << 14, 2f64.powi(20), seed);
                    let narrow = gaussian(1 << 14, 2f64.powi(8), seed + 10);
                    (0..1 << 14)
                        .map(|i| if i % 32 == 0 { wide[i] } else { narrow[i] })
                        .collect()
                })
                .collect(),
        };
        let uniform = OutputFlooding::with_classes(
            FloodingTarget::NoiseBound,
            14,
            40.0,
            (
                ClassFlooding::sized(FloodingTarget::NoiseBound, 14, &noise.class(1, true)),
                1,
            ),
            None,
        );
        let f = OutputFlooding::size(FloodingTarget::NoiseBound, 14, 40.0, &noise, 10.0).unwrap();
        assert_eq!(f.stride, 32);
        let off = f.off_stride.as_ref().unwrap();
        assert!((off.measured_noise_log2 - 8.0 - 2.0).abs() < 0.6, "{off:?}");
        assert!(f.sigma() > 2f64.powi(21) && f.off_stride_sigma() < 2f64.powi(11));
        // The wide flooding on a 32nd of the coefficients: about sqrt(32)
        // times less error per slot than everywhere.
        let gain = uniform.slot_error / f.slot_error;
        assert!((4.5..6.0).contains(&gain), "{gain}");
        // The subring's flooding is the uniform one's, on fewer coefficients.
        assert_eq!(f.on_stride.sigma_log2, uniform.on_stride.sigma_log2);
    }

    #[test]
    fn the_bound_covers_every_coefficient_a_key_may_decrypt() {
        // Gaussian noise on every one of 2^13 coefficients: the support is
        // all of them, t^2 = 2 ln 2 (1 + 13 + 10 + 40).
        let errors = gaussian(8192, 3.0, 5);
        let spread = NoiseSpread::of(&errors);
        assert!((6500.0..10000.0).contains(&spread.support), "{spread:?}");
        assert!((spread.deviation - 3.0).abs() < 0.2, "{spread:?}");
        let t = (2.0 * std::f64::consts::LN_2 * (64.0 + (spread.support.log2() - 13.0))).sqrt();
        assert!((spread.bound() / spread.deviation - t).abs() < 1e-9);
        // The same noise replicated 32 times over 32 times the length, as a
        // plan that copies values across slots makes it (and only a 32nd of
        // the coefficients carry it): the support shrinks, the deviation on
        // it is the noise's own, not its root mean square over everything.
        let sparse: Vec<f64> = errors[..256]
            .iter()
            .flat_map(|&e| std::iter::once(e).chain(std::iter::repeat_n(0.0, 31)))
            .collect();
        let s = NoiseSpread::of(&sparse);
        assert!((150.0..400.0).contains(&s.support), "{s:?}");
        assert!((s.deviation - 3.0).abs() < 0.6, "{s:?}");
        // Never below what was seen.
        let measured = MeasuredNoise {
            max: 1e6,
            spreads: vec![spread],
        };
        assert_eq!(measured.bound(), 1e6);
    }

    #[test]
    fn unaffordable_security_is_refused_with_the_missing_precision() {
        // HE-MAN's cryptonets at scale 2^30: output noise about 2^20.
        let noise = gaussian_runs(2f64.powi(17));
        let e = OutputFlooding::size(FloodingTarget::Statistical(40), 14, 30.0, &noise, 20.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bits more precision"), "{e}");
    }

    #[test]
    fn noise_bound_flooding_costs_a_few_bits_and_proves_nothing() {
        // The default floods the largest noise seen, the tail bound option
        // the bound; both record the bound.
        let noise = gaussian_runs(2f64.powi(15));
        let (largest, bound) = (noise.max(), noise.class(1, true).bound());
        let f = OutputFlooding::size(FloodingTarget::NoiseBound, 14, 30.0, &noise, 20.0).unwrap();
        assert!((f.on_stride.sigma_log2 - largest.log2()).abs() < 1e-9);
        assert!((f.on_stride.noise_bound_log2 - bound.log2()).abs() < 1e-9);
        assert!(f.statistical_security < 0.0);
        let t = OutputFlooding::size(FloodingTarget::TailBound, 14, 30.0, &noise, 20.0).unwrap();
        assert!((t.on_stride.sigma_log2 - bound.log2()).abs() < 1e-9);
        assert!((t.slot_error / f.slot_error - bound / largest).abs() < 1e-9);
        assert!(t.slot_error < 0.1, "{}", t.slot_error);
    }
}
