//! Slot rotations and conjugation through Galois automorphisms X -> X^g followed by key
//! switching from sigma_g(s) back to s; hoisted rotations share one ModUp.

use super::Decomposed;
use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::keys::{galois_element_conjugate, galois_element_for_step, GaloisKeys, SwitchingKey};
use crate::plaintext::Ciphertext;

impl Evaluator {
    fn check_rotatable(&self, ct: &Ciphertext, gk: &GaloisKeys) -> Result<()> {
        self.check_fingerprint(&gk.fingerprint)?;
        if ct.degree() != 1 {
            return Err(CkksError::InvalidDegree(ct.degree()));
        }
        Ok(())
    }

    /// Key-switches the hoisted decomposition of c1 with the key for g (encrypted under
    /// sigma_g^-1(s)), then applies sigma_g to the outputs and to c0.
    fn galois_from_decomposed(
        &self,
        ct: &Ciphertext,
        dec: &Decomposed,
        g: u64,
        key: &SwitchingKey,
    ) -> Ciphertext {
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let perm = ring.automorphism_permutation(g);
        let (u0, u1) = self.finish_switch(dec, key);
        let mut c0 = ring.permute(&u0, &perm);
        let c0_rot = ring.permute(&ct.parts[0], &perm);
        ring.add_assign(&mut c0, &c0_rot, &basis);
        Ciphertext {
            parts: vec![c0, ring.permute(&u1, &perm)],
            level: ct.level,
            scale: ct.scale,
            seed: None,
        }
    }

    /// Applies X -> X^g and switches the key back to s.
    fn apply_galois(
        &self,
        ct: &Ciphertext,
        g: u64,
        step: Option<i64>,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        self.check_rotatable(ct, gk)?;
        if g == 1 {
            return Ok(Ciphertext {
                seed: None,
                ..ct.clone()
            });
        }
        let key = gk.get(g).ok_or(CkksError::MissingGaloisKey {
            galois_element: g,
            step,
        })?;
        let dec = self.decompose(&ct.parts[1], ct.level);
        Ok(self.galois_from_decomposed(ct, &dec, g, key))
    }

    /// Rotates the slots left by `step` (negative: right).
    pub fn rotate(&self, ct: &Ciphertext, step: i64, gk: &GaloisKeys) -> Result<Ciphertext> {
        let g = galois_element_for_step(step, self.params.n());
        self.apply_galois(ct, g, Some(step), gk)
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, ct: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext> {
        self.apply_galois(ct, galois_element_conjugate(self.params.n()), None, gk)
    }

    /// Rotations of one ciphertext by several steps sharing a single decomposition of c1
    /// (hoisting, Halevi-Shoup 2018 Sec. 5; Bossuat et al. 2021): the decomposition and
    /// ModUp of c1 do not depend on the step, so each step only takes an inner product with
    /// its key, runs ModDown and permutes the result.
    pub fn rotate_hoisted(
        &self,
        ct: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>> {
        self.check_rotatable(ct, gk)?;
        let n = self.params.n();
        // Look every key up before any work so a missing key fails fast.
        let keys = steps
            .iter()
            .map(|&s| {
                let g = galois_element_for_step(s, n);
                if g == 1 {
                    Ok((g, None))
                } else {
                    gk.get(g)
                        .map(|k| (g, Some(k)))
                        .ok_or(CkksError::MissingGaloisKey {
                            galois_element: g,
                            step: Some(s),
                        })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let dec = self.decompose(&ct.parts[1], ct.level);
        Ok(crate::parallel::map(&keys, |&(g, key)| match key {
            None => Ciphertext {
                seed: None,
                ..ct.clone()
            },
            Some(key) => self.galois_from_decomposed(ct, &dec, g, key),
        }))
    }

    /// Decomposes and raises c1 once (ModUp) for later rotations of the same ciphertext by
    /// [`Evaluator::rotate_decomposed`]: the building block of baby-step giant-step linear
    /// transforms, where the rotations of one input are spread over a computation.
    pub fn decompose_for_rotation(&self, ct: &Ciphertext) -> Result<Decomposed> {
        if ct.degree() != 1 {
            return Err(CkksError::InvalidDegree(ct.degree()));
        }
        Ok(self.decompose(&ct.parts[1], ct.level))
    }

    /// Rotates `ct` left by `step` reusing `dec = decompose_for_rotation(ct)`.
    pub fn rotate_decomposed(
        &self,
        ct: &Ciphertext,
        dec: &Decomposed,
        step: i64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        self.check_rotatable(ct, gk)?;
        if dec.level != ct.level {
            return Err(CkksError::LevelMismatch(ct.level, dec.level));
        }
        let g = galois_element_for_step(step, self.params.n());
        if g == 1 {
            return Ok(Ciphertext {
                seed: None,
                ..ct.clone()
            });
        }
        let key = gk.get(g).ok_or(CkksError::MissingGaloisKey {
            galois_element: g,
            step: Some(step),
        })?;
        Ok(self.galois_from_decomposed(ct, dec, g, key))
    }
}
