use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: made for other parameters (fingerprint {found}, expected {expected}): keys, ciphertexts and model must come from the same keyparams")]
    Mismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path}: {error}")]
    Ckks {
        path: PathBuf,
        error: heman_ckks::CkksError,
    },
}

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
