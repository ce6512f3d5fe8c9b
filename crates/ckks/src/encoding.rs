//! Canonical-embedding encoder (Cheon-Kim-Kim-Song 2017, Sec. 3.1).
//!
//! Slot j holds m(zeta^(5^j)) for zeta = exp(i*pi/N), j < N/2. Ordering the slots along the
//! powers of 5 (the cyclic subgroup of Z_2N^* of order N/2) makes the automorphism
//! X -> X^(5^k) a left rotation of the slots by k, and X -> X^-1 their complex conjugation.
//! Evaluating m at all odd powers zeta^(2t+1) is a size-N FFT of the "twisted" coefficients
//! m_k zeta^k; encoding is the inverse transform of the conjugate-symmetric completion of the
//! slot vector, so the resulting coefficients are real.

use crate::error::{CkksError, Result};
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;
use crate::ring::context::for_each_limb;
use num_complex::Complex64;

/// Encodes complex or real vectors into plaintext polynomials and decodes them back.
pub struct Encoder {
    params: CkksParameters,
    /// For slot j, the FFT index t with 2t+1 = 5^j mod 2N.
    slot_index: Vec<usize>,
    /// For slot j, the FFT index of the conjugate point, 2t+1 = -5^j mod 2N.
    conj_index: Vec<usize>,
    /// Twiddles of every radix-2 stage, stage after stage: for the stage of length `len`,
    /// exp(2 pi i k / len) for k < len/2 (contiguous, so the butterfly loop streams them).
    stage_roots: Vec<Complex64>,
    /// Bit-reversal permutation of 0..N.
    bit_reverse: Vec<u32>,
    /// zeta^k = exp(i pi k / N), k < N.
    twist: Vec<Complex64>,
}

impl Encoder {
    /// Precomputes the slot permutation and FFT tables.
    pub fn new(params: &CkksParameters) -> Self {
        let n = params.n();
        let two_n = 2 * n;
        let mut slot_index = Vec::with_capacity(n / 2);
        let mut conj_index = Vec::with_capacity(n / 2);
        let mut e = 1usize;
        for _ in 0..n / 2 {
            slot_index.push((e - 1) / 2);
            conj_index.push((two_n - e - 1) / 2);
            e = (e * 5) % two_n;
        }
        let mut stage_roots = Vec::with_capacity(n);
        let mut len = 2;
        while len <= n {
            stage_roots.extend((0..len / 2).map(|k| {
                Complex64::from_polar(1.0, 2.0 * std::f64::consts::PI * k as f64 / len as f64)
            }));
            len <<= 1;
        }
        let log_n = n.trailing_zeros();
        let bit_reverse = (0..n as u32)
            .map(|i| i.reverse_bits() >> (u32::BITS - log_n))
            .collect();
        let twist = (0..n)
            .map(|k| Complex64::from_polar(1.0, std::f64::consts::PI * k as f64 / n as f64))
            .collect();
        Self {
            params: params.clone(),
            slot_index,
            conj_index,
            stage_roots,
            bit_reverse,
            twist,
        }
    }

    /// The parameters it encodes for.
    pub fn params(&self) -> &CkksParameters {
        &self.params
    }

    /// Number of slots (N/2).
    pub fn slots(&self) -> usize {
        self.params.slots()
    }

    /// In-place radix-2 DFT: a_t <- sum_k a_k w^(sign * t k), w = exp(2 pi i / N).
    fn fft(&self, a: &mut [Complex64], inverse: bool) {
        let n = a.len();
        for (i, &j) in self.bit_reverse.iter().enumerate() {
            if i < j as usize {
                a.swap(i, j as usize);
            }
        }
        let mut len = 2;
        let mut offset = 0;
        while len <= n {
            let half = len / 2;
            let roots = &self.stage_roots[offset..offset + half];
            for block in a.chunks_exact_mut(len) {
                let (lo, hi) = block.split_at_mut(half);
                if inverse {
                    for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(roots) {
                        let t = *v * w.conj();
                        *v = *u - t;
                        *u += t;
                    }
                } else {
                    for ((u, v), w) in lo.iter_mut().zip(hi.iter_mut()).zip(roots) {
                        let t = *v * w;
                        *v = *u - t;
                        *u += t;
                    }
                }
            }
            offset += half;
            len <<= 1;
        }
    }

    /// Real coefficients (before scaling) of the polynomial whose slots are `values`.
    fn slots_to_coeffs(&self, values: &[Complex64]) -> Vec<f64> {
        let n = self.params.n();
        let mut v = vec![Complex64::new(0.0, 0.0); n];
        for (j, z) in values.iter().enumerate() {
            v[self.slot_index[j]] = *z;
            v[self.conj_index[j]] = z.conj();
        }
        self.fft(&mut v, true);
        let inv_n = 1.0 / n as f64;
        v.iter()
            .zip(&self.twist)
            .map(|(x, t)| (x * t.conj()).re * inv_n)
            .collect()
    }

    /// Slots of the polynomial with real coefficients `coeffs` (unscaled).
    fn coeffs_to_slots(&self, coeffs: &[f64]) -> Vec<Complex64> {
        let mut v: Vec<Complex64> = coeffs
            .iter()
            .zip(&self.twist)
            .map(|(&c, t)| t * c)
            .collect();
        self.fft(&mut v, false);
        self.slot_index.iter().map(|&t| v[t]).collect()
    }

    /// Encodes up to N/2 complex values at `level` with `scale` (remaining slots are zero).
    pub fn encode_complex(
        &self,
        values: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        self.params.check_level(level)?;
        if values.len() > self.slots() {
            return Err(CkksError::TooManyValues {
                given: values.len(),
                slots: self.slots(),
            });
        }
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(CkksError::EncodingOverflow(format!(
                "invalid scale {scale}"
            )));
        }
        if values
            .iter()
            .any(|z| !(z.re.is_finite() && z.im.is_finite()))
        {
            return Err(CkksError::EncodingOverflow("non-finite value".into()));
        }
        let coeffs = self.slots_to_coeffs(values);
        self.encode_coeffs(&coeffs, level, scale)
    }

    /// Encodes `period` repeated over all N/2 slots (its length should divide N/2): the
    /// message of a sparse packing, which lives in a subring and which bootstrapping with
    /// that many slots refreshes.
    pub fn encode_periodic(
        &self,
        period: &[Complex64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        self.encode_complex(&self.replicated(period), level, scale)
    }

    /// `period` repeated over all N/2 slots.
    pub fn replicated(&self, period: &[Complex64]) -> Vec<Complex64> {
        period.iter().cycle().take(self.slots()).copied().collect()
    }

    /// Encodes up to N/2 real values at `level` with `scale`.
    pub fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let z: Vec<Complex64> = values.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        self.encode_complex(&z, level, scale)
    }

    /// Rounds scaled coefficients and reduces them into every prime of the level (NTT form).
    fn encode_coeffs(&self, coeffs: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let ring = self.params.ring();
        let log_q: f64 = self.params.q()[..=level]
            .iter()
            .map(|&q| (q as f64).log2())
            .sum();
        let limit = 2f64.powf(log_q - 1.0).min(2f64.powi(126));
        let scaled: Vec<f64> = coeffs.iter().map(|&c| c * scale).collect();
        let max_abs = scaled.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if scaled.iter().any(|x| x.is_nan()) || max_abs.round() >= limit {
            return Err(CkksError::EncodingOverflow(format!(
                "scaled coefficient 2^{:.1} does not fit modulus of 2^{log_q:.1} at level {level}",
                max_abs.log2()
            )));
        }
        let basis = self.params.q_basis(level);
        let mut poly = crate::ring::Poly::zero(ring.n(), basis.len());
        if max_abs < 2f64.powi(51) {
            // Round to nearest by the 1.5 * 2^52 trick (exact below 2^51, no libm call), then
            // reduce small signed integers branch-free.
            const MAGIC: f64 = 6755399441055744.0;
            let ints: Vec<i64> = scaled
                .iter()
                .map(|&x| ((x + MAGIC) - MAGIC) as i64)
                .collect();
            for_each_limb(poly.data_mut(), ring.n(), |j, limb| {
                let m = ring.modulus(basis[j]);
                for (o, &x) in limb.iter_mut().zip(&ints) {
                    *o = m.reduce_i64(x);
                }
            });
        } else {
            let ints: Vec<i128> = scaled.iter().map(|&x| x.round() as i128).collect();
            for_each_limb(poly.data_mut(), ring.n(), |j, limb| {
                let m = ring.modulus(basis[j]);
                for (o, &x) in limb.iter_mut().zip(&ints) {
                    *o = m.reduce_i128(x);
                }
            });
        }
        ring.ntt_forward(&mut poly, &basis);
        Ok(Plaintext::new(poly, level, scale))
    }

    /// Encodes the same real constant in every slot (a constant polynomial: no FFT needed).
    pub fn encode_constant(&self, value: f64, level: usize, scale: f64) -> Result<Plaintext> {
        let mut coeffs = vec![0.0; self.params.n()];
        coeffs[0] = value;
        self.params.check_level(level)?;
        self.encode_coeffs(&coeffs, level, scale)
    }

    /// Decodes all N/2 complex slots.
    pub fn decode_complex(&self, pt: &Plaintext) -> Vec<Complex64> {
        let ring = self.params.ring();
        let basis = self.params.q_basis(pt.level());
        let mut poly = pt.poly().clone();
        ring.ntt_inverse(&mut poly, &basis);
        let crt = self.params.crt(pt.level());
        let n = ring.n();
        let mut residues = vec![0u64; basis.len()];
        let inv_scale = 1.0 / pt.scale();
        let coeffs: Vec<f64> = (0..n)
            .map(|k| {
                for (j, r) in residues.iter_mut().enumerate() {
                    *r = poly.limb(j)[k];
                }
                crt.centered_f64(&residues) * inv_scale
            })
            .collect();
        self.coeffs_to_slots(&coeffs)
    }

    /// Decodes the real parts of all N/2 slots.
    pub fn decode(&self, pt: &Plaintext) -> Vec<f64> {
        self.decode_complex(pt).iter().map(|z| z.re).collect()
    }

    /// The noise of a decrypted plaintext against the real values it should hold (missing
    /// slots are zero): the largest |coefficient| of `pt - Encode(expected)`, unscaled, i.e.
    /// in units of the integer ring. This is the bound B that noise flooding must hide; the
    /// imaginary parts of the slots, pure noise, are included.
    pub fn coefficient_noise(&self, pt: &Plaintext, expected: &[f64]) -> f64 {
        self.coefficient_errors(pt, expected)
            .iter()
            .fold(0.0f64, |m, c| m.max(c.abs()))
    }

    /// The coefficients of `pt - Encode(expected)`, unscaled: the noise
    /// whose largest value [`Encoder::coefficient_noise`] gives.
    pub fn coefficient_errors(&self, pt: &Plaintext, expected: &[f64]) -> Vec<f64> {
        let mut err = self.decode_complex(pt);
        for (z, &x) in err.iter_mut().zip(expected) {
            z.re -= x;
        }
        let mut coefficients = self.slots_to_coeffs(&err);
        for c in &mut coefficients {
            *c *= pt.scale();
        }
        coefficients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_roundtrip_and_real_coefficients() {
        let params = CkksParameters::new(12, &[40], &[40], 30).unwrap();
        let enc = Encoder::new(&params);
        let vals: Vec<Complex64> = (0..512)
            .map(|i| Complex64::new((i as f64 * 0.1).sin(), (i as f64 * 0.3).cos()))
            .collect();
        let coeffs = enc.slots_to_coeffs(&vals);
        let back = enc.coeffs_to_slots(&coeffs);
        for (a, b) in vals.iter().zip(&back) {
            assert!((a - b).norm() < 1e-9);
        }
    }

    #[test]
    fn slot_rotation_is_automorphism_by_five() {
        let params = CkksParameters::new(12, &[40], &[40], 30).unwrap();
        let enc = Encoder::new(&params);
        let n = params.n();
        let vals: Vec<Complex64> = (0..n / 2).map(|i| Complex64::new(i as f64, 0.0)).collect();
        let coeffs = enc.slots_to_coeffs(&vals);
        // Apply X -> X^5 on real coefficients.
        let mut rot = vec![0.0; n];
        for (i, &c) in coeffs.iter().enumerate() {
            let t = (i * 5) % (2 * n);
            if t < n {
                rot[t] += c;
            } else {
                rot[t - n] -= c;
            }
        }
        let back = enc.coeffs_to_slots(&rot);
        for j in 0..n / 2 {
            assert!((back[j].re - vals[(j + 1) % (n / 2)].re).abs() < 1e-6);
        }
    }

    #[test]
    fn large_scales_take_the_exact_wide_path() {
        let params = CkksParameters::new(13, &[50, 40, 40], &[50], 40).unwrap();
        let enc = Encoder::new(&params);
        let vals = [0.75, -1.25, 3.5];
        // Scale 2^80 (coefficients beyond 2^51) at the top level, decoded exactly.
        let pt = enc.encode(&vals, 2, 2f64.powi(80)).unwrap();
        let back = enc.decode(&pt);
        for (a, b) in vals.iter().zip(&back) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // Too large for level 0 (50 bits).
        assert!(enc.encode(&vals, 0, 2f64.powi(60)).is_err());
    }
}
