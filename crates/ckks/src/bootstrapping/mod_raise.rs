//! ModRaise (Cheon-Han-Kim-Kim-Song, EUROCRYPT 2018, Sec. 3.1): a ciphertext modulo q_0 read
//! as one modulo Q_L. Its centred coefficients are kept, so it decrypts to t = m + q_0 I
//! where I, a polynomial with small integer coefficients, depends on the secret's weight.

use crate::params::CkksParameters;
use crate::plaintext::Ciphertext;
use crate::ring::Poly;

/// The ciphertext at level 0 raised to the top level. Its recorded scale is q_0: the slots
/// then decode to t / q_0 = m / q_0 + I.
pub(crate) fn mod_raise(params: &CkksParameters, ct: &Ciphertext) -> Ciphertext {
    let ring = params.ring();
    let q0 = ring.modulus(0).value();
    let top = params.q_basis(params.max_level());
    let parts = ct
        .parts
        .iter()
        .map(|p| {
            let mut limb = p.limb(0).to_vec();
            ring.ntt_inverse_limb(&mut limb, 0);
            let centred: Vec<i64> = limb
                .iter()
                .map(|&c| {
                    if c > q0 / 2 {
                        c as i64 - q0 as i64
                    } else {
                        c as i64
                    }
                })
                .collect();
            let mut raised: Poly = ring.poly_from_i64(&centred, &top);
            ring.ntt_forward(&mut raised, &top);
            raised
        })
        .collect();
    Ciphertext {
        parts,
        level: params.max_level(),
        scale: q0 as f64,
        seed: None,
    }
}
