//! The secret key.

use crate::params::CkksParameters;
use crate::ring::Poly;
use zeroize::Zeroize;

/// A ternary secret s, kept both as small coefficients and in NTT form over every prime
/// (ciphertext and special). Zeroised on drop; its Debug output shows no coefficient.
pub struct SecretKey {
    pub(crate) fingerprint: [u8; 32],
    pub(crate) coeffs: Vec<i64>,
    /// NTT form over the full basis Q_L ∪ P (limb i modulo modulus index i).
    pub(crate) ntt: Poly,
}

impl SecretKey {
    pub(crate) fn from_coeffs(params: &CkksParameters, coeffs: Vec<i64>) -> Self {
        let ring = params.ring();
        let basis = params.full_basis();
        let mut ntt = ring.poly_from_i64(&coeffs, &basis);
        ring.ntt_forward(&mut ntt, &basis);
        Self {
            fingerprint: params.fingerprint(),
            coeffs,
            ntt,
        }
    }

    /// Fingerprint of the parameters this key belongs to.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey { .. }")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.coeffs.zeroize();
        self.ntt.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for SecretKey {}
