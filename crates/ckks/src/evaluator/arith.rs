//! Additions, subtractions, plaintext and constant multiplications.

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::plaintext::{Ciphertext, Plaintext};
use crate::ring::Poly;

impl Evaluator {
    /// Aligns two ciphertexts to the lower of their levels.
    fn aligned<'a>(
        &self,
        a: &'a Ciphertext,
        b: &'a Ciphertext,
    ) -> Result<(
        std::borrow::Cow<'a, Ciphertext>,
        std::borrow::Cow<'a, Ciphertext>,
    )> {
        use std::borrow::Cow;
        Self::check_scales(a.scale, b.scale)?;
        let l = a.level.min(b.level);
        let a = if a.level > l {
            Cow::Owned(self.drop_to_level(a, l)?)
        } else {
            Cow::Borrowed(a)
        };
        let b = if b.level > l {
            Cow::Owned(self.drop_to_level(b, l)?)
        } else {
            Cow::Borrowed(b)
        };
        Ok((a, b))
    }

    fn add_sub(&self, a: &Ciphertext, b: &Ciphertext, sub: bool) -> Result<Ciphertext> {
        let (a, b) = self.aligned(a, b)?;
        let ring = self.params.ring();
        let basis = self.params.q_basis(a.level);
        let deg = a.parts.len().max(b.parts.len());
        let n = ring.n();
        let parts = (0..deg)
            .map(|i| {
                let mut p = a
                    .parts
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Poly::zero(n, basis.len()));
                if let Some(q) = b.parts.get(i) {
                    if sub {
                        ring.sub_assign(&mut p, q, &basis);
                    } else {
                        ring.add_assign(&mut p, q, &basis);
                    }
                }
                p
            })
            .collect();
        Ok(Ciphertext {
            parts,
            level: a.level,
            scale: a.scale,
            seed: None,
        })
    }

    /// a += b in place, for ciphertexts at the same level and scale (b's degree at most
    /// a's): no new ciphertext, where [`Evaluator::add`] allocates one.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        Self::check_scales(a.scale, b.scale)?;
        if a.level != b.level {
            return Err(CkksError::LevelMismatch(a.level, b.level));
        }
        if b.parts.len() > a.parts.len() {
            return Err(CkksError::InvalidDegree(b.degree()));
        }
        let ring = self.params.ring();
        let basis = self.params.q_basis(a.level);
        for (p, q) in a.parts.iter_mut().zip(&b.parts) {
            ring.add_assign(p, q, &basis);
        }
        a.seed = None;
        Ok(())
    }

    /// a + b (levels aligned down to the lower one; scales must match).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.add_sub(a, b, false)
    }

    /// a - b (levels aligned down to the lower one; scales must match).
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.add_sub(a, b, true)
    }

    /// -a.
    pub fn neg(&self, a: &Ciphertext) -> Ciphertext {
        let ring = self.params.ring();
        let basis = self.params.q_basis(a.level);
        let mut out = a.clone();
        out.seed = None;
        for p in out.parts.iter_mut() {
            ring.neg_assign(p, &basis);
        }
        out
    }

    /// i * a in every slot, exactly and without a level: multiplication by the monomial
    /// X^(N/2), whose value at every slot's root zeta^(5^j) is i^(5^j) = i.
    pub fn mul_by_i(&self, a: &Ciphertext) -> Ciphertext {
        let ring = self.params.ring();
        let basis = self.params.q_basis(a.level);
        let mut monomial = vec![0i64; ring.n()];
        monomial[ring.n() / 2] = 1;
        let mut x = ring.poly_from_i64(&monomial, &basis);
        ring.ntt_forward(&mut x, &basis);
        let parts = a.parts.iter().map(|p| ring.mul(p, &x, &basis)).collect();
        Ciphertext {
            parts,
            level: a.level,
            scale: a.scale,
            seed: None,
        }
    }

    /// The plaintext's polynomial for use at the ciphertext's level: a plaintext at a higher
    /// level is valid at every lower level, and limb-wise operations only read the first
    /// level+1 limbs, so no copy is needed.
    fn plain_at<'a>(&self, pt: &'a Plaintext, level: usize) -> Result<&'a Poly> {
        if pt.level() < level {
            return Err(CkksError::LevelMismatch(level, pt.level()));
        }
        Ok(pt.poly())
    }

    fn add_sub_plain(&self, ct: &Ciphertext, pt: &Plaintext, sub: bool) -> Result<Ciphertext> {
        Self::check_scales(ct.scale, pt.scale())?;
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let m = self.plain_at(pt, ct.level)?;
        let mut out = ct.clone();
        out.seed = None;
        if sub {
            ring.sub_assign(&mut out.parts[0], m, &basis);
        } else {
            ring.add_assign(&mut out.parts[0], m, &basis);
        }
        Ok(out)
    }

    /// ct + pt (pt at the ciphertext's level or higher, same scale).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.add_sub_plain(ct, pt, false)
    }

    /// ct - pt.
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.add_sub_plain(ct, pt, true)
    }

    /// ct * pt (slot-wise); the scale becomes ct.scale * pt.scale.
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let m = self.plain_at(pt, ct.level)?;
        let parts = ct.parts.iter().map(|p| ring.mul(p, m, &basis)).collect();
        Ok(Ciphertext {
            parts,
            level: ct.level,
            scale: ct.scale * pt.scale(),
            seed: None,
        })
    }

    /// Residues of round(value * scale) modulo each prime of the level.
    fn constant_residues(&self, value: f64, scale: f64, level: usize) -> Result<Vec<u64>> {
        let x = (value * scale).round();
        if !x.is_finite() || x.abs() >= 2f64.powi(126) {
            return Err(CkksError::EncodingOverflow(format!(
                "constant {value} at scale {scale}"
            )));
        }
        let x = x as i128;
        let ring = self.params.ring();
        Ok((0..=level)
            .map(|i| ring.modulus(i).reduce_i128(x))
            .collect())
    }

    /// ct * c for a real constant c encoded as round(c * const_scale); the scale becomes
    /// ct.scale * const_scale (rescale afterwards). Use the last prime of the level as
    /// const_scale to return to the same scale after one rescale.
    pub fn mul_const(&self, ct: &Ciphertext, c: f64, const_scale: f64) -> Result<Ciphertext> {
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let k = self.constant_residues(c, const_scale, ct.level)?;
        let mut out = ct.clone();
        out.seed = None;
        for p in out.parts.iter_mut() {
            ring.mul_scalar_assign(p, &k, &basis);
        }
        out.scale = ct.scale * const_scale;
        Ok(out)
    }

    /// ct * k for an integer k, without scale growth (no rescale needed).
    pub fn mul_integer(&self, ct: &Ciphertext, k: i64) -> Ciphertext {
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let ks: Vec<u64> = basis
            .iter()
            .map(|&i| ring.modulus(i).reduce_i64(k))
            .collect();
        let mut out = ct.clone();
        out.seed = None;
        for p in out.parts.iter_mut() {
            ring.mul_scalar_assign(p, &ks, &basis);
        }
        out
    }

    /// ct + c in every slot (c encoded at the ciphertext's scale: a constant polynomial).
    pub fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        let mut out = ct.clone();
        self.add_const_assign(&mut out, c)?;
        Ok(out)
    }

    /// ct += c in every slot, in place (as [`Evaluator::add_const`], without a copy).
    pub fn add_const_assign(&self, ct: &mut Ciphertext, c: f64) -> Result<()> {
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let k = self.constant_residues(c, ct.scale, ct.level)?;
        ct.seed = None;
        // A constant polynomial's NTT evaluations all equal the constant.
        ring.add_scalar_assign(&mut ct.parts[0], &k, &basis);
        Ok(())
    }
}
