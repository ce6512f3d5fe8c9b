//! Slot rotations and conjugation through Galois automorphisms X -> X^g followed by key
//! switching from sigma_g(s) back to s; hoisted rotations share one ModUp.

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::keys::{galois_element_conjugate, galois_element_for_step, GaloisKeys};
use crate::plaintext::Ciphertext;
use rayon::prelude::*;

impl Evaluator {
    fn check_rotatable(&self, ct: &Ciphertext, gk: &GaloisKeys) -> Result<()> {
        self.check_fingerprint(&gk.fingerprint)?;
        if ct.degree() != 1 {
            return Err(CkksError::InvalidDegree(ct.degree()));
        }
        Ok(())
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
            return Ok(ct.clone());
        }
        let key = gk.get(g).ok_or(CkksError::MissingGaloisKey {
            galois_element: g,
            step,
        })?;
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let perm = ring.automorphism_permutation(g);
        let (c0, c1) = rayon::join(
            || ring.permute(&ct.parts[0], &perm),
            || ring.permute(&ct.parts[1], &perm),
        );
        let (mut u0, u1) = self.key_switch(&c1, ct.level, key);
        ring.add_assign(&mut u0, &c0, &basis);
        Ok(Ciphertext {
            parts: vec![u0, u1],
            level: ct.level,
            scale: ct.scale,
            seed: None,
        })
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
    /// (hoisting, Halevi-Shoup 2018 Sec. 5; Bossuat et al. 2021): the automorphism commutes
    /// with the digit decomposition, so each step only permutes the raised digits, takes an
    /// inner product with its key and runs ModDown.
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
        let ring = self.params.ring();
        let basis = self.params.q_basis(ct.level);
        let dec = self.decompose(&ct.parts[1], ct.level);
        Ok(keys
            .par_iter()
            .map(|&(g, key)| match key {
                None => Ciphertext {
                    seed: None,
                    ..ct.clone()
                },
                Some(key) => {
                    let perm = ring.automorphism_permutation(g);
                    let (mut u0, u1) = self.finish_switch(&dec, key, Some(&perm));
                    let c0 = ring.permute(&ct.parts[0], &perm);
                    ring.add_assign(&mut u0, &c0, &basis);
                    Ciphertext {
                        parts: vec![u0, u1],
                        level: ct.level,
                        scale: ct.scale,
                        seed: None,
                    }
                }
            })
            .collect())
    }
}
