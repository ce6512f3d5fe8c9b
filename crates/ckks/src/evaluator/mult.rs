//! Ciphertext multiplication and relinearisation.

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::keys::RelinearizationKey;
use crate::plaintext::Ciphertext;

impl Evaluator {
    /// Tensor product (d0, d1, d2) = (a0 b0, a0 b1 + a1 b0, a1 b1): a degree-2 ciphertext
    /// decrypting under (1, s, s^2). Levels are aligned down; the scale is the product.
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if a.degree() != 1 {
            return Err(CkksError::InvalidDegree(a.degree()));
        }
        if b.degree() != 1 {
            return Err(CkksError::InvalidDegree(b.degree()));
        }
        let l = a.level.min(b.level);
        let ring = self.params.ring();
        let basis = self.params.q_basis(l);
        // Limb-wise products read only the first l+1 limbs of a higher-level operand.
        let (pa, pb) = (&a.parts, &b.parts);
        let ((d0, d2), d1) = crate::parallel::join(
            || {
                crate::parallel::join(
                    || ring.mul(&pa[0], &pb[0], &basis),
                    || ring.mul(&pa[1], &pb[1], &basis),
                )
            },
            || {
                let mut d1 = ring.mul(&pa[0], &pb[1], &basis);
                ring.mul_acc(&mut d1, &pa[1], &pb[0], &basis);
                d1
            },
        );
        Ok(Ciphertext {
            parts: vec![d0, d1, d2],
            level: l,
            scale: a.scale * b.scale,
            seed: None,
        })
    }

    /// Relinearises a degree-2 ciphertext: key-switches d2 from s^2 to s.
    pub fn relinearize(&self, ct: &Ciphertext, rlk: &RelinearizationKey) -> Result<Ciphertext> {
        self.check_fingerprint(&rlk.fingerprint)?;
        match ct.degree() {
            1 => return Ok(ct.clone()),
            2 => {}
            d => return Err(CkksError::InvalidDegree(d)),
        }
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let (u0, u1) = self.key_switch(&ct.parts[2], ct.level, &rlk.key);
        let mut c0 = ct.parts[0].clone();
        let mut c1 = ct.parts[1].clone();
        ring.add_assign(&mut c0, &u0, &basis);
        ring.add_assign(&mut c1, &u1, &basis);
        Ok(Ciphertext {
            parts: vec![c0, c1],
            level: ct.level,
            scale: ct.scale,
            seed: None,
        })
    }

    /// a * b followed by relinearisation (rescale separately).
    pub fn mul_relin(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        rlk: &RelinearizationKey,
    ) -> Result<Ciphertext> {
        let t = self.mul(a, b)?;
        self.relinearize(&t, rlk)
    }

    /// a^2 with relinearisation.
    pub fn square_relin(&self, a: &Ciphertext, rlk: &RelinearizationKey) -> Result<Ciphertext> {
        self.mul_relin(a, a, rlk)
    }
}
