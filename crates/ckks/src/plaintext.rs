//! Plaintexts and ciphertexts.

use crate::ring::Poly;
use crate::sampling::Seed;

/// An encoded message: one polynomial in NTT form over q_0..q_level, with its scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Plaintext {
    poly: Poly,
    level: usize,
    scale: f64,
}

impl Plaintext {
    pub(crate) fn new(poly: Poly, level: usize, scale: f64) -> Self {
        Self { poly, level, scale }
    }

    /// The level (number of primes minus one).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale Delta the message was multiplied by.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The polynomial (NTT form).
    pub fn poly(&self) -> &Poly {
        &self.poly
    }
}

/// A CKKS ciphertext (c_0, c_1[, c_2]) in NTT form over q_0..q_level: decrypts to
/// c_0 + c_1 s (+ c_2 s^2).
#[derive(Debug, Clone, PartialEq)]
pub struct Ciphertext {
    pub(crate) parts: Vec<Poly>,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    /// Seed of c_1 for a fresh secret-key encryption (c_1 = uniform(seed)); None otherwise.
    pub(crate) seed: Option<Seed>,
}

impl Ciphertext {
    /// The level (number of primes minus one).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale of the encrypted message.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Overrides the recorded scale (for callers that track scales themselves, e.g. after a
    /// rescale by a prime close to the intended scale).
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }

    /// Degree: 1 for a normal ciphertext, 2 after a multiplication without relinearisation.
    pub fn degree(&self) -> usize {
        self.parts.len() - 1
    }

    /// Whether the compressed (seeded) serialisation is available.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    /// The seed `c_1` is expanded from, for a fresh secret-key encryption:
    /// public (the seeded form sends it), and what makes two encryptions
    /// distinct whatever their `c_0`.
    pub fn seed(&self) -> Option<&Seed> {
        self.seed.as_ref()
    }

    /// The component polynomials (NTT form).
    pub fn parts(&self) -> &[Poly] {
        &self.parts
    }
}
