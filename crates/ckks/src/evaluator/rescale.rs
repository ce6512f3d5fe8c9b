//! Rescaling: division by the last prime with rounding (Cheon-Han-Kim-Kim-Song 2018,
//! Sec. 3.3: c'_i = q_l^-1 (c_i - [c_l]_{q_l}) mod q_i, [.] centred for rounding).

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::plaintext::Ciphertext;
use crate::ring::basis::lift_centered;
use crate::ring::context::for_each_limb;
use crate::ring::kernels;
use crate::ring::Poly;

impl Evaluator {
    /// Divides the ciphertext (and its scale) by its last prime q_level and drops that prime.
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        if ct.level == 0 {
            return Err(CkksError::RescaleAtLevelZero);
        }
        let level = ct.level;
        let ring = self.params.ring();
        let n = ring.n();
        let q_last = ring.modulus(level).value();
        let parts = ct
            .parts
            .iter()
            .map(|p| {
                let mut last = p.limb(level).to_vec();
                ring.ntt_inverse_limb(&mut last, level);
                let mut out = p.prefix(level);
                for_each_limb(out.data_mut(), n, |i, limb| {
                    let m = ring.modulus(i);
                    let q = m.value();
                    let inv = m.inv(m.reduce(q_last)).unwrap_or(0);
                    // Centred lift of the last limb into q_i (rounding), back to NTT form.
                    let mut t = vec![0u64; n];
                    lift_centered(ring, &mut t, &last, q_last, i);
                    ring.ntt_forward_limb(&mut t, i);
                    kernels::sub_mod(limb, &t, q);
                    ring.mul_const_limb(i, limb, inv);
                });
                out
            })
            .collect::<Vec<Poly>>();
        Ok(Ciphertext {
            parts,
            level: level - 1,
            scale: ct.scale / q_last as f64,
            seed: None,
        })
    }
}
