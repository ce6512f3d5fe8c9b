//! RNS polynomials: `limbs x N` residues stored contiguously, one limb per prime.

use zeroize::Zeroize;

/// A polynomial of `Z_Q[X]/(X^N + 1)` in RNS form. Limb `i` holds the residues modulo the
/// `i`-th prime of whatever basis the owner associates with it (the poly itself does not
/// know its moduli; ciphertexts and keys do). Whether the limbs hold coefficients or NTT
/// evaluations is also the owner's convention (ciphertexts, plaintexts and keys: NTT).
#[derive(Clone, PartialEq, Eq)]
pub struct Poly {
    n: usize,
    data: Vec<u64>,
}

impl std::fmt::Debug for Poly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never dump coefficients (they may be secret); shape only.
        write!(f, "Poly {{ n: {}, limbs: {} }}", self.n, self.num_limbs())
    }
}

impl Poly {
    /// The zero polynomial with `limbs` limbs of degree `n`.
    pub fn zero(n: usize, limbs: usize) -> Self {
        Self {
            n,
            data: vec![0; n * limbs],
        }
    }

    /// Wraps raw limb-major data (`data.len()` must be a multiple of `n`).
    pub fn from_data(n: usize, data: Vec<u64>) -> Self {
        assert!(
            n > 0 && data.len().is_multiple_of(n),
            "data is not whole limbs"
        );
        Self { n, data }
    }

    /// Ring degree N.
    #[inline]
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of RNS limbs.
    #[inline]
    pub fn num_limbs(&self) -> usize {
        self.data.len() / self.n
    }

    /// Limb `i`.
    #[inline]
    pub fn limb(&self, i: usize) -> &[u64] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    /// Limb `i`, mutable.
    #[inline]
    pub fn limb_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.n..(i + 1) * self.n]
    }

    /// All residues, limb-major.
    #[inline]
    pub fn data(&self) -> &[u64] {
        &self.data
    }

    /// All residues, limb-major, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u64] {
        &mut self.data
    }

    /// Keeps only the first `limbs` limbs.
    pub fn truncate_limbs(&mut self, limbs: usize) {
        self.data.truncate(limbs * self.n);
    }

    /// A copy of the first `limbs` limbs.
    pub fn prefix(&self, limbs: usize) -> Poly {
        Poly {
            n: self.n,
            data: self.data[..limbs * self.n].to_vec(),
        }
    }

    /// Appends the limbs of `other`.
    pub fn append_limbs(&mut self, other: &Poly) {
        debug_assert_eq!(self.n, other.n);
        self.data.extend_from_slice(&other.data);
    }
}

impl Zeroize for Poly {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}
