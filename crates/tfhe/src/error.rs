//! Typed errors of the TFHE crate.

/// Everything that can go wrong when choosing a preset, loading keys or
/// ciphertexts, combining vectors or building lookup tables.
#[derive(Debug, thiserror::Error)]
pub enum TfheError {
    /// An unknown preset, keys or ciphertexts made for other parameters, or
    /// an unusable argument such as a negative flooding deviation.
    #[error("parameters: {0}")]
    Parameters(String),
    /// Bytes that do not decode to the expected serialised object.
    #[error("serialised {what}: {message}")]
    Serialization {
        /// The kind of object being loaded.
        what: &'static str,
        /// Why the bytes were rejected.
        message: String,
    },
    /// Counts or indices that do not match: vector lengths, matrix
    /// structure, table indices.
    #[error("{0}")]
    Shape(String),
    /// A lookup table whose input window or functions do not fit the
    /// preset's polynomial, or tables that cannot share one call.
    #[error("lookup table: {0}")]
    LookupTable(String),
}

/// The crate's result type, failing with a [`TfheError`] by default.
pub type Result<T, E = TfheError> = std::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, message: impl Into<String>) -> TfheError {
    TfheError::Serialization {
        what,
        message: message.into(),
    }
}
