//! What reading and writing files can fail with, always naming the file.

use std::path::PathBuf;

/// Errors of heman's files.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file cannot be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file is not what it should be (kind, format, length, checksum,
    /// content).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file belongs to other parameters than the keyparams in use.
    #[error("{path}: made for other parameters (fingerprint {found}, expected {expected}): keys, ciphertexts and model must come from the same keyparams")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Its fingerprint's first bytes (hex).
        found: String,
        /// The expected fingerprint's first bytes (hex).
        expected: String,
    },
    /// A CKKS object inside the file is refused.
    #[error("{path}: {error}")]
    Ckks {
        /// The file.
        path: PathBuf,
        /// What the CKKS crate said.
        error: heman_ckks::CkksError,
    },
}

/// Results of file operations.
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

pub(crate) fn invalid(path: &std::path::Path, message: impl Into<String>) -> ArtifactError {
    ArtifactError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn io(path: &std::path::Path, error: std::io::Error) -> ArtifactError {
    ArtifactError::Io {
        path: path.to_path_buf(),
        error,
    }
}
