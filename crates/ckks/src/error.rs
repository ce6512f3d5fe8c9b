//! Typed errors of the CKKS crate.

use thiserror::Error;

/// Everything that can go wrong when building parameters, encoding, evaluating or loading
/// CKKS objects. Loading never panics on foreign bytes: it returns one of these.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CkksError {
    /// The ring degree is outside 2^10 ..= 2^16.
    #[error("ring degree 2^{log_n} is not supported (allowed: 2^10 ..= 2^16)")]
    UnsupportedDegree {
        /// log2 of the requested ring degree.
        log_n: u32,
    },
    /// The parameter set is not 128-bit secure per the HomomorphicEncryption.org table.
    #[error(
        "insecure parameters: log2(QP) = {log_qp:.1} bits exceeds the 128-bit bound of {max_bits} bits for N = 2^{log_n} (HomomorphicEncryption.org standard, ternary secret)"
    )]
    InsecureParameters {
        /// log2 of the ring degree.
        log_n: u32,
        /// log2 of the product of all moduli (ciphertext and special primes).
        log_qp: f64,
        /// The bound from the standard.
        max_bits: u32,
    },
    /// A generic invalid parameter (bit size, counts, scale...).
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Not enough NTT-friendly primes of the requested size exist.
    #[error("could not find {count} NTT-friendly primes of {bits} bits for N = {n}")]
    NotEnoughPrimes {
        /// Requested bit size.
        bits: u32,
        /// Number of primes requested.
        count: usize,
        /// Ring degree.
        n: usize,
    },
    /// More values than slots were given to the encoder.
    #[error("too many values: {given} given, {slots} slots available")]
    TooManyValues {
        /// Number of values given.
        given: usize,
        /// Number of slots.
        slots: usize,
    },
    /// A value cannot be encoded at the requested scale (not finite or too large).
    #[error("value cannot be encoded: {0}")]
    EncodingOverflow(String),
    /// Operands live at different levels.
    #[error("level mismatch: {0} vs {1}")]
    LevelMismatch(usize, usize),
    /// Operands carry different scales.
    #[error("scale mismatch: 2^{0:.4} vs 2^{1:.4}")]
    ScaleMismatch(f64, f64),
    /// A level index outside the chain was requested.
    #[error("level {requested} is out of range (max level {max})")]
    InvalidLevel {
        /// Requested level.
        requested: usize,
        /// Highest level of the parameter set.
        max: usize,
    },
    /// A ciphertext at level 0 cannot be rescaled.
    #[error("cannot rescale: ciphertext is at level 0")]
    RescaleAtLevelZero,
    /// The ciphertext has degree 2 where degree 1 is expected (relinearise first) or vice versa.
    #[error("unexpected ciphertext degree {0}")]
    InvalidDegree(usize),
    /// No Galois key was generated for a rotation step.
    #[error("missing Galois key for Galois element {galois_element} (rotation step {step:?})")]
    MissingGaloisKey {
        /// The Galois element X -> X^g.
        galois_element: u64,
        /// The rotation step if this is a rotation, None for conjugation.
        step: Option<i64>,
    },
    /// Serialised bytes do not start with the magic header.
    #[error("not a heman CKKS object (bad magic header)")]
    BadMagic,
    /// Unsupported serialisation format version.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Found version.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The bytes hold another kind of object.
    #[error("wrong object kind: expected {expected}, found {found}")]
    WrongKind {
        /// Expected kind name.
        expected: &'static str,
        /// Found kind name.
        found: String,
    },
    /// The object was made for other parameters.
    #[error("parameter fingerprint mismatch: object was made for other CKKS parameters")]
    FingerprintMismatch,
    /// The bytes end early.
    #[error("truncated data: needed {needed} more bytes")]
    Truncated {
        /// How many more bytes were needed.
        needed: usize,
    },
    /// The bytes are damaged (checksum, out-of-range value, trailing bytes...).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A seeded (compressed) form was requested for an object that has no seed.
    #[error("object has no seed: only fresh secret-key ciphertexts and keys can be seeded")]
    NotSeeded,
    /// A key arrived in full form: its uniform half must be regenerated from
    /// its seed, so that the party that made it cannot have chosen it.
    #[error("{0} in full form refused: keys are read in seeded form only, their uniform half generated from the seed")]
    UnseededKey(&'static str),
    /// The operating system random source failed.
    #[error("random source failure: {0}")]
    Randomness(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CkksError>;
