//! Public evaluation material: public key, key-switching keys, relinearisation and Galois
//! keys. None of these types holds secret data.

use crate::ring::Poly;
use crate::sampling::Seed;
use std::collections::BTreeMap;

/// Public key (b, a) = (-a s + e, a) over Q_L in NTT form; a = uniform(seed).
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    pub(crate) fingerprint: [u8; 32],
    pub(crate) b: Poly,
    pub(crate) a: Poly,
    pub(crate) seed: Seed,
}

impl PublicKey {
    /// Fingerprint of the parameters this key belongs to.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

/// A hybrid key-switching key from s' to s (Han-Ki 2020): for each digit group j,
/// (b_j, a_j) over Q_L ∪ P in NTT form with b_j = -a_j s + e_j + P * [Q~_j] s',
/// where [Q~_j] is 1 modulo the primes of group j and 0 modulo the others.
/// a_j = uniform(seed, stream j).
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchingKey {
    pub(crate) b: Vec<Poly>,
    pub(crate) a: Vec<Poly>,
    pub(crate) seed: Seed,
}

impl SwitchingKey {
    /// Number of digits (dnum).
    pub fn digits(&self) -> usize {
        self.b.len()
    }
}

/// Relinearisation key: switches s^2 to s.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinearizationKey {
    pub(crate) fingerprint: [u8; 32],
    pub(crate) key: SwitchingKey,
}

impl RelinearizationKey {
    /// Fingerprint of the parameters this key belongs to.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

/// Galois keys: one switching key from sigma_g(s) to s per Galois element g.
#[derive(Debug, Clone, PartialEq)]
pub struct GaloisKeys {
    pub(crate) fingerprint: [u8; 32],
    pub(crate) keys: BTreeMap<u64, SwitchingKey>,
}

impl GaloisKeys {
    /// Fingerprint of the parameters these keys belong to.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The Galois elements for which a key exists.
    pub fn galois_elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// Whether a key for Galois element g exists.
    pub fn contains(&self, g: u64) -> bool {
        self.keys.contains_key(&g)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn get(&self, g: u64) -> Option<&SwitchingKey> {
        self.keys.get(&g)
    }
}

/// Galois element of a left rotation by `step` slots: 5^step mod 2N (negative steps are
/// taken modulo the N/2 slots).
pub fn galois_element_for_step(step: i64, n: usize) -> u64 {
    let slots = (n / 2) as i64;
    let k = step.rem_euclid(slots) as u64;
    let two_n = 2 * n as u64;
    let mut g = 1u64;
    let mut base = 5u64;
    let mut e = k;
    while e > 0 {
        if e & 1 == 1 {
            g = g * base % two_n;
        }
        base = base * base % two_n;
        e >>= 1;
    }
    g
}

/// Galois element of complex conjugation: X -> X^(2N-1).
pub fn galois_element_conjugate(n: usize) -> u64 {
    2 * n as u64 - 1
}
