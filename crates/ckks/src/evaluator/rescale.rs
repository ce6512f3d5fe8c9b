//! Rescaling: division by the last prime with rounding (Cheon-Han-Kim-Kim-Song 2018,
//! Sec. 3.3: c'_i = q_l^-1 (c_i - [c_l]_{q_l}) mod q_i, [.] centred for rounding).

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::plaintext::Ciphertext;
use crate::ring::basis::lift_centered;
use crate::ring::context::for_each_limb;
use crate::ring::kernels;

thread_local! {
    /// The last limb lifted into one prime, per thread.
    static LIFTED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Evaluator {
    /// Divides the ciphertext (and its scale) by its last prime q_level and drops that prime.
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        if ct.level == 0 {
            return Err(CkksError::RescaleAtLevelZero);
        }
        let parts = ct.parts.iter().map(|p| p.prefix(ct.level + 1)).collect();
        self.rescale_owned(Ciphertext {
            parts,
            level: ct.level,
            scale: ct.scale,
            seed: None,
        })
    }

    /// [`Evaluator::rescale`] reusing the ciphertext's memory: no copy of its limbs.
    pub fn rescale_owned(&self, mut ct: Ciphertext) -> Result<Ciphertext> {
        if ct.level == 0 {
            return Err(CkksError::RescaleAtLevelZero);
        }
        let level = ct.level;
        let ring = self.params.ring();
        let n = ring.n();
        let q_last = ring.modulus(level).value();
        for p in ct.parts.iter_mut() {
            let mut last = p.limb(level).to_vec();
            ring.ntt_inverse_limb(&mut last, level);
            p.truncate_limbs(level);
            for_each_limb(p.data_mut(), n, |i, limb| {
                let m = ring.modulus(i);
                let inv = m.inv(m.reduce(q_last)).unwrap_or(0);
                // Centred lift of the last limb into q_i (rounding), back to NTT form.
                LIFTED.with(|t| {
                    let mut t = t.borrow_mut();
                    t.resize(n, 0);
                    lift_centered(ring, &mut t, &last, q_last, i);
                    ring.ntt_forward_limb(&mut t, i);
                    kernels::sub_mod(limb, &t, m.value());
                });
                ring.mul_const_limb(i, limb, inv);
            });
        }
        ct.level = level - 1;
        ct.scale /= q_last as f64;
        ct.seed = None;
        Ok(ct)
    }
}
