//! Rescaling: division by the last prime with rounding (Cheon-Han-Kim-Kim-Song 2018,
//! Sec. 3.3: c'_i = q_l^-1 (c_i - [c_l]_{q_l}) mod q_i, [.] centred for rounding).

use super::Evaluator;
use crate::error::{CkksError, Result};
use crate::plaintext::Ciphertext;
use crate::ring::context::for_each_limb;
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
        let half = q_last / 2;
        let parts = ct
            .parts
            .iter()
            .map(|p| {
                let mut last = p.limb(level).to_vec();
                ring.ntt_inverse_limb(&mut last, level);
                let mut out = p.prefix(level);
                for_each_limb(out.data_mut(), n, |i, limb| {
                    let m = ring.modulus(i);
                    let q_mod = m.reduce(q_last);
                    let inv = m.inv(q_mod).unwrap_or(0);
                    let inv_s = m.shoup(inv);
                    // Centred lift of the last limb into q_i, then back to NTT form.
                    let mut t: Vec<u64> = last
                        .iter()
                        .map(|&v| {
                            let r = m.reduce(v);
                            if v > half {
                                m.sub(r, q_mod)
                            } else {
                                r
                            }
                        })
                        .collect();
                    ring.ntt_forward_limb(&mut t, i);
                    for (x, &y) in limb.iter_mut().zip(&t) {
                        *x = m.mul_shoup(m.sub(*x, y), inv, inv_s);
                    }
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
