//! CKKS parameter sets: ring degree, prime chain, special primes, scale, secret distribution,
//! the HomomorphicEncryption.org 128-bit security bound and a parameter fingerprint.

use crate::error::{CkksError, Result};
use crate::ring::primes::{generate_primes, is_prime};
use crate::ring::{CrtReconstructor, RingContext};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Largest log2(QP) for 128-bit classical security with a ternary secret and sigma = 3.2,
/// for N = 2^10 ..= 2^16: N = 2^10..2^15 from the HomomorphicEncryption.org security standard
/// (Albrecht et al. 2018, Table 1); N = 2^16, which that table lacks, from the current
/// guidelines (Bossuat et al., "Security Guidelines for Implementing Homomorphic Encryption",
/// ePrint 2024/463: 1747 bits, below the 1772 OpenFHE extrapolates).
pub const MAX_LOG_QP_128: [(u32, u32); 7] = [
    (10, 27),
    (11, 54),
    (12, 109),
    (13, 218),
    (14, 438),
    (15, 881),
    (16, 1747),
];

/// As [`MAX_LOG_QP_128`] for 192 bits: the standard's table for N = 2^10..2^15; N = 2^16 as
/// OpenFHE extends it with the lattice estimator (`stdlatticeparms.cpp`).
pub const MAX_LOG_QP_192: [(u32, u32); 7] = [
    (10, 19),
    (11, 37),
    (12, 75),
    (13, 152),
    (14, 305),
    (15, 611),
    (16, 1228),
];

/// As [`MAX_LOG_QP_192`] for 256 bits.
pub const MAX_LOG_QP_256: [(u32, u32); 7] = [
    (10, 14),
    (11, 29),
    (12, 58),
    (13, 118),
    (14, 237),
    (15, 476),
    (16, 956),
];

/// A classical security level of the standard's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum SecurityLevel {
    /// 128 bits (the default).
    #[default]
    Bits128,
    /// 192 bits.
    Bits192,
    /// 256 bits.
    Bits256,
}

impl SecurityLevel {
    /// The level of `bits` (128, 192 or 256).
    pub fn from_bits(bits: u32) -> Result<Self> {
        match bits {
            128 => Ok(Self::Bits128),
            192 => Ok(Self::Bits192),
            256 => Ok(Self::Bits256),
            _ => Err(CkksError::InvalidParameters(format!(
                "security level {bits}: the tables have 128, 192 and 256 bits"
            ))),
        }
    }

    /// Its bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::Bits128 => 128,
            Self::Bits192 => 192,
            Self::Bits256 => 256,
        }
    }

    /// The bound on log2(QP) at N = 2^log_n, if the table has that degree.
    pub fn max_log_qp(self, log_n: u32) -> Option<u32> {
        let table = match self {
            Self::Bits128 => &MAX_LOG_QP_128,
            Self::Bits192 => &MAX_LOG_QP_192,
            Self::Bits256 => &MAX_LOG_QP_256,
        };
        table.iter().find(|(l, _)| *l == log_n).map(|(_, b)| *b)
    }
}

/// Largest prime size accepted. Primes below 2^50 run tfhe-ntt's AVX-512 IFMA kernels (and
/// heman's own, `ring::ifma`); larger ones, which bootstrapping's q_0 and EvalMod want for
/// precision (Bossuat et al. 2021 use 60 bits), take the 64-bit paths.
pub const MAX_PRIME_BITS: u32 = 61;
/// Smallest prime size accepted (keeps Barrett preconditions and noise budget sensible).
pub const MIN_PRIME_BITS: u32 = 20;

/// Standard deviation of the discrete Gaussian error.
pub const ERROR_STD_DEV: f64 = 3.2;
/// Error samples are rejected beyond this bound (6 sigma).
pub const ERROR_BOUND: i64 = 19;

/// 128-bit security bound on log2(QP) for a ring degree, if the degree is supported: the
/// bound every parameter set is checked against (higher levels only lower it).
pub fn max_log_qp(log_n: u32) -> Option<u32> {
    SecurityLevel::Bits128.max_log_qp(log_n)
}

/// How the secret key is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDistribution {
    /// Each coefficient uniform in {-1, 0, 1}.
    UniformTernary,
    /// Exactly `h` nonzero coefficients, each +-1 (sparse secret): accepted only where a
    /// published estimate covers it, see [`SPARSE_SECRET_128`].
    HammingWeight(usize),
}

/// The one sparse-secret point heman accepts: `(log_n, smallest Hamming weight, largest
/// log2(QP))` for 128-bit security, from Lattigo's `N16QP1546H192H32` bootstrapping
/// parameters (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, EUROCRYPT 2021). The standard's
/// table assumes a uniform ternary secret; a lighter secret is easier to guess (hybrid
/// attacks, Son and Cheon 2019), so any other weight or ring would be a claim nobody made.
pub const SPARSE_SECRET_128: (u32, usize, u32) = (16, 192, 1546);

/// The ephemeral sparse secret of sparse-secret encapsulation (Bossuat, Troncoso-Pastoriza,
/// Hubaux, "Bootstrapping for approximate homomorphic encryption with negligible
/// failure-probability by using sparse-secret encapsulation", ACNS 2022): `(log_n, smallest
/// Hamming weight, largest log2(q_0 p_0))`. Only the key switching a ciphertext at level 0
/// to that secret is encrypted under it, modulo q_0 p_0 alone; the weight and modulus are
/// those of Lattigo's published `N16QP1546H192H32` set (h = 32 with q_0 p_0 of 60 + 61 bits).
pub const EPHEMERAL_SECRET_128: (u32, usize, u32) = (16, 32, 121);

struct Inner {
    log_n: u32,
    q: Vec<u64>,
    p: Vec<u64>,
    log_scale: u32,
    secret: SecretDistribution,
    ring: RingContext,
    fingerprint: [u8; 32],
    crt: Vec<CrtReconstructor>,
    level_scales: Vec<f64>,
    digit_size: usize,
}

/// A validated, 128-bit-secure CKKS parameter set. Cheap to clone (shared).
#[derive(Clone)]
pub struct CkksParameters {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CkksParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CkksParameters")
            .field("log_n", &self.inner.log_n)
            .field("q", &self.inner.q)
            .field("p", &self.inner.p)
            .field("log_scale", &self.inner.log_scale)
            .field("secret", &self.inner.secret)
            .finish()
    }
}

impl PartialEq for CkksParameters {
    fn eq(&self, other: &Self) -> bool {
        self.inner.fingerprint == other.inner.fingerprint
    }
}

impl CkksParameters {
    /// Parameters with N = 2^log_n, ciphertext primes of the given bit sizes (q_0 first),
    /// special primes of the given bit sizes and default scale 2^log_scale; uniform ternary
    /// secret. Primes are generated deterministically, searching downward from 2^bits.
    pub fn new(log_n: u32, q_bits: &[u32], p_bits: &[u32], log_scale: u32) -> Result<Self> {
        Self::with_secret(
            log_n,
            q_bits,
            p_bits,
            log_scale,
            SecretDistribution::UniformTernary,
        )
    }

    /// As [`CkksParameters::new`] with a chosen secret distribution.
    pub fn with_secret(
        log_n: u32,
        q_bits: &[u32],
        p_bits: &[u32],
        log_scale: u32,
        secret: SecretDistribution,
    ) -> Result<Self> {
        check_degree(log_n)?;
        let n = 1usize << log_n;
        for &b in q_bits.iter().chain(p_bits) {
            if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&b) {
                return Err(CkksError::InvalidParameters(format!(
                    "prime size {b} bits outside {MIN_PRIME_BITS}..={MAX_PRIME_BITS}"
                )));
            }
        }
        // Check security on the bit sizes first so that an insecure request fails fast.
        let approx: f64 = q_bits.iter().chain(p_bits).map(|&b| b as f64).sum();
        check_security(log_n, approx - 1.0)?;
        let (q, p) = prime_chain(n, q_bits, p_bits)?;
        Self::from_primes(log_n, &q, &p, log_scale, secret)
    }

    /// Parameters from explicit primes (all distinct, NTT-friendly, at most
    /// [`MAX_PRIME_BITS`] bits).
    pub fn from_primes(
        log_n: u32,
        q: &[u64],
        p: &[u64],
        log_scale: u32,
        secret: SecretDistribution,
    ) -> Result<Self> {
        Self::build(log_n, q, p, log_scale, secret, true)
    }

    /// Parameters outside the security tables (a small ring with a long chain, a sparse
    /// secret anywhere), for unit tests of algorithms whose correctness does not depend on
    /// the ring size, such as bootstrapping at N = 2^11. Compiled into tests only: no
    /// shipped code path can make an insecure parameter set.
    #[cfg(test)]
    pub(crate) fn insecure_for_tests(
        log_n: u32,
        q_bits: &[u32],
        p_bits: &[u32],
        log_scale: u32,
        secret: SecretDistribution,
    ) -> Result<Self> {
        let (q, p) = prime_chain(1 << log_n, q_bits, p_bits)?;
        Self::build(log_n, &q, &p, log_scale, secret, false)
    }

    fn build(
        log_n: u32,
        q: &[u64],
        p: &[u64],
        log_scale: u32,
        secret: SecretDistribution,
        check_secure: bool,
    ) -> Result<Self> {
        check_degree(log_n)?;
        let n = 1usize << log_n;
        if q.is_empty() {
            return Err(CkksError::InvalidParameters(
                "at least one ciphertext prime is needed".into(),
            ));
        }
        if p.is_empty() {
            return Err(CkksError::InvalidParameters(
                "at least one special prime is needed for key switching".into(),
            ));
        }
        let all: Vec<u64> = q.iter().chain(p).copied().collect();
        for (i, &x) in all.iter().enumerate() {
            let bits = 64 - x.leading_zeros();
            if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits)
                || !is_prime(x)
                || x % (2 * n as u64) != 1
            {
                return Err(CkksError::InvalidParameters(format!(
                    "{x} is not an NTT-friendly prime of {MIN_PRIME_BITS}..={MAX_PRIME_BITS} bits for N = {n}"
                )));
            }
            if all[..i].contains(&x) {
                return Err(CkksError::InvalidParameters(format!("prime {x} repeated")));
            }
        }
        let log_qp: f64 = all.iter().map(|&x| (x as f64).log2()).sum();
        if check_secure {
            check_security(log_n, log_qp)?;
        }
        if !(10..=60).contains(&log_scale) {
            return Err(CkksError::InvalidParameters(format!(
                "log_scale {log_scale} outside 10..=60"
            )));
        }
        if let SecretDistribution::HammingWeight(h) = secret {
            let (sparse_log_n, min_weight, max_bits) = SPARSE_SECRET_128;
            if h == 0 || h > n {
                return Err(CkksError::InvalidParameters(format!(
                    "Hamming weight {h} outside 1..={n}"
                )));
            }
            if check_secure && (log_n != sparse_log_n || h < min_weight || log_qp > max_bits as f64)
            {
                return Err(CkksError::InvalidParameters(format!(
                    "a sparse secret of Hamming weight {h} at N = 2^{log_n}, log2(QP) = {log_qp:.1} has no published 128-bit estimate; heman accepts weight >= {min_weight} at N = 2^{sparse_log_n} with log2(QP) <= {max_bits}, or the uniform ternary secret"
                )));
            }
        }
        let ring = RingContext::new(n, &all)?;
        let crt = (0..q.len())
            .map(|l| CrtReconstructor::new(&ring.moduli()[..=l]))
            .collect();
        // Scale per level when every level is entered by squaring and rescaling:
        // s_L = 2^log_scale, s_{l-1} = s_l^2 / q_l.
        let mut level_scales = vec![0.0; q.len()];
        let mut s = 2f64.powi(log_scale as i32);
        for l in (0..q.len()).rev() {
            level_scales[l] = s;
            s = s * s / q[l] as f64;
        }
        let fingerprint = fingerprint(log_n, q, p, log_scale, secret, None);
        Ok(Self {
            inner: Arc::new(Inner {
                log_n,
                q: q.to_vec(),
                p: p.to_vec(),
                log_scale,
                secret,
                ring,
                fingerprint,
                crt,
                level_scales,
                digit_size: p.len(),
            }),
        })
    }

    /// The ring of sparse-secret encapsulation: the same N, q_0 and the first special prime
    /// only, and a secret of Hamming weight `weight`. Refused outside
    /// [`EPHEMERAL_SECRET_128`] (unit tests of the crate excepted, which use small rings).
    pub fn encapsulation(&self, weight: usize) -> Result<Self> {
        let (log_n, min_weight, max_bits) = EPHEMERAL_SECRET_128;
        let q0 = self.inner.q[0];
        let p0 = self.inner.p[0];
        let log_qp = (q0 as f64).log2() + (p0 as f64).log2();
        let covered =
            self.inner.log_n == log_n && weight >= min_weight && log_qp <= max_bits as f64;
        if !covered && !cfg!(test) {
            return Err(CkksError::InvalidParameters(format!(
                "an ephemeral secret of weight {weight} at N = 2^{}, log2(q_0 p_0) = {log_qp:.1} has no published 128-bit estimate; heman accepts weight >= {min_weight} at N = 2^{log_n} with log2(q_0 p_0) <= {max_bits}",
                self.inner.log_n
            )));
        }
        Self::build(
            self.inner.log_n,
            &[q0],
            &[p0],
            self.inner.log_scale,
            SecretDistribution::HammingWeight(weight),
            false,
        )
    }

    /// The same parameters with key-switching digits of `digit_size` ciphertext primes
    /// instead of one digit per special prime. Fewer primes per digit than special primes
    /// (P > Q_j) make key switching's noise the rounding of ModDown alone, about 2^(log N)
    /// smaller than with P ~ Q_j (Han-Ki 2020, Sec. 3.2; Kim-Polyakov-Zucca 2021, "Revisiting
    /// homomorphic encryption schemes for finite fields", Sec. 4, for the noise terms):
    /// bootstrapping, whose messages sit 2^-14 below the scale, needs it. More digits mean
    /// larger keys: dnum = ceil((L + 1) / digit_size).
    pub fn with_digit_size(&self, digit_size: usize) -> Result<Self> {
        if digit_size == 0 || digit_size > self.inner.q.len() {
            return Err(CkksError::InvalidParameters(format!(
                "key-switching digits of {digit_size} primes: between 1 and {}",
                self.inner.q.len()
            )));
        }
        let i = &self.inner;
        let mut out = Self::build(i.log_n, &i.q, &i.p, i.log_scale, i.secret, false)?;
        let inner = Arc::get_mut(&mut out.inner).expect("freshly built");
        inner.digit_size = digit_size;
        if digit_size != i.p.len() {
            inner.fingerprint =
                fingerprint(i.log_n, &i.q, &i.p, i.log_scale, i.secret, Some(digit_size));
        }
        Ok(out)
    }

    /// log2(N).
    pub fn log_n(&self) -> u32 {
        self.inner.log_n
    }

    /// Ring degree N.
    pub fn n(&self) -> usize {
        1 << self.inner.log_n
    }

    /// Number of complex slots, N/2.
    pub fn slots(&self) -> usize {
        self.n() / 2
    }

    /// Ciphertext primes q_0 .. q_L.
    pub fn q(&self) -> &[u64] {
        &self.inner.q
    }

    /// Special primes used only during key switching.
    pub fn p(&self) -> &[u64] {
        &self.inner.p
    }

    /// Highest level L (a fresh ciphertext has L+1 primes).
    pub fn max_level(&self) -> usize {
        self.inner.q.len() - 1
    }

    /// Default scale 2^log_scale.
    pub fn default_scale(&self) -> f64 {
        2f64.powi(self.inner.log_scale as i32)
    }

    /// log2 of the default scale.
    pub fn log_scale(&self) -> u32 {
        self.inner.log_scale
    }

    /// Scale a ciphertext has at `level` if it was encrypted at the top level with the
    /// default scale and every level was entered by a multiplication of two such ciphertexts
    /// followed by a rescale.
    pub fn scale_at_level(&self, level: usize) -> f64 {
        self.inner.level_scales[level.min(self.max_level())]
    }

    /// Secret distribution.
    pub fn secret_distribution(&self) -> SecretDistribution {
        self.inner.secret
    }

    /// Ciphertext primes per key-switching digit (alpha): the number of special primes
    /// unless [`CkksParameters::with_digit_size`] chose otherwise.
    pub fn alpha(&self) -> usize {
        self.inner.digit_size
    }

    /// Number of key-switching digits, dnum = ceil((L+1) / alpha) (Han-Ki 2020).
    pub fn dnum(&self) -> usize {
        self.inner.q.len().div_ceil(self.alpha())
    }

    /// log2(Q P).
    pub fn log_qp(&self) -> f64 {
        self.inner
            .q
            .iter()
            .chain(&self.inner.p)
            .map(|&x| (x as f64).log2())
            .sum()
    }

    /// SHA-256 over every value that defines the parameter set.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.inner.fingerprint
    }

    /// The ring (NTT plans over q_0..q_L then p_0..p_{alpha-1}).
    pub fn ring(&self) -> &RingContext {
        &self.inner.ring
    }

    /// Modulus indices of the ciphertext basis at `level`.
    pub(crate) fn q_basis(&self, level: usize) -> Vec<usize> {
        (0..=level).collect()
    }

    /// Modulus indices of the special primes.
    pub(crate) fn p_indices(&self) -> Vec<usize> {
        let l1 = self.inner.q.len();
        (l1..l1 + self.inner.p.len()).collect()
    }

    /// Modulus indices of the extended basis Q_level ∪ P.
    pub(crate) fn qp_basis(&self, level: usize) -> Vec<usize> {
        let mut b = self.q_basis(level);
        b.extend(self.p_indices());
        b
    }

    /// Modulus indices of the full basis Q_L ∪ P (keys live there).
    pub(crate) fn full_basis(&self) -> Vec<usize> {
        self.qp_basis(self.max_level())
    }

    pub(crate) fn crt(&self, level: usize) -> &CrtReconstructor {
        &self.inner.crt[level]
    }

    pub(crate) fn check_level(&self, level: usize) -> Result<()> {
        if level > self.max_level() {
            Err(CkksError::InvalidLevel {
                requested: level,
                max: self.max_level(),
            })
        } else {
            Ok(())
        }
    }
}

/// Distinct NTT-friendly primes of the given sizes for degree `n`, each searched downward
/// from 2^bits, the ciphertext primes first.
fn prime_chain(n: usize, q_bits: &[u32], p_bits: &[u32]) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut used: Vec<u64> = Vec::new();
    for &b in q_bits.iter().chain(p_bits) {
        let x = generate_primes(b, 1, n, &used)?[0];
        used.push(x);
    }
    let p = used.split_off(q_bits.len());
    Ok((used, p))
}

fn check_degree(log_n: u32) -> Result<()> {
    if max_log_qp(log_n).is_none() {
        Err(CkksError::UnsupportedDegree { log_n })
    } else {
        Ok(())
    }
}

fn check_security(log_n: u32, log_qp: f64) -> Result<()> {
    let max_bits = max_log_qp(log_n).ok_or(CkksError::UnsupportedDegree { log_n })?;
    if log_qp > max_bits as f64 {
        Err(CkksError::InsecureParameters {
            log_n,
            log_qp,
            max_bits,
        })
    } else {
        Ok(())
    }
}

fn fingerprint(
    log_n: u32,
    q: &[u64],
    p: &[u64],
    log_scale: u32,
    secret: SecretDistribution,
    digit_size: Option<usize>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"heman-ckks-parameters-v1");
    h.update(log_n.to_le_bytes());
    h.update((q.len() as u64).to_le_bytes());
    for x in q {
        h.update(x.to_le_bytes());
    }
    h.update((p.len() as u64).to_le_bytes());
    for x in p {
        h.update(x.to_le_bytes());
    }
    h.update(log_scale.to_le_bytes());
    match secret {
        SecretDistribution::UniformTernary => h.update([0u8]),
        SecretDistribution::HammingWeight(w) => {
            h.update([1u8]);
            h.update((w as u64).to_le_bytes());
        }
    }
    h.update(ERROR_STD_DEV.to_le_bytes());
    // Only a digit size other than the default (one digit per special prime) is hashed, so
    // parameter sets made before it was a choice keep their fingerprints.
    if let Some(d) = digit_size {
        h.update(b"digit-size");
        h.update((d as u64).to_le_bytes());
    }
    h.finalize().into()
}
