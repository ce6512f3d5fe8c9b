//! The seam's one error type, with the one distinction every caller needs:
//! whether the other party (or the caller) sent something that is refused,
//! or something failed on this side.

use heman_artifacts::ArtifactError;
use heman_model::ModelError;

/// Everything a backend operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Bytes or a tensor from outside are refused: keys, ciphertexts or an
    /// input that do not fit (the sender's fault; a server answers 400).
    #[error("{0}")]
    Refused(String),
    /// A file of this party's own is unreadable or does not belong (model,
    /// keyparams, keys directory).
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The model or its calibration cannot be loaded or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model cannot be compiled as asked (an option that does not apply,
    /// a layer the backend cannot run, a budget it cannot meet).
    #[error("{0}")]
    Compile(String),
    /// Something failed that should not have, on this side.
    #[error("{0}")]
    Internal(String),
}

impl BackendError {
    /// Whether the error is the sender's: refused input, not a failure here.
    pub fn is_refusal(&self) -> bool {
        matches!(self, BackendError::Refused(_))
    }

    /// The same error with `context` before its message (the class kept).
    pub fn context(self, context: impl std::fmt::Display) -> Self {
        match self {
            BackendError::Refused(m) => BackendError::Refused(format!("{context}: {m}")),
            BackendError::Compile(m) => BackendError::Compile(format!("{context}: {m}")),
            BackendError::Internal(m) => BackendError::Internal(format!("{context}: {m}")),
            other => BackendError::Internal(format!("{context}: {other}")),
        }
    }
}

/// A refusal of something from outside, `what` naming it.
pub(crate) fn refused(what: &str) -> impl Fn(ArtifactError) -> BackendError + '_ {
    move |e| BackendError::Refused(format!("{what} refused: {e}"))
}

/// The refusal of fresh (input) ciphertexts handed to decryption in place
/// of a model's output: decoding them through the output's layout would be
/// a silent wrong answer.
pub(crate) fn not_an_output(origin: &std::path::Path) -> BackendError {
    BackendError::Refused(format!(
        "{}: fresh input ciphertexts, not an inference output",
        origin.display()
    ))
}

/// The refusal of an input that is not a fresh encryption: the plans'
/// noise budgets start from a fresh encryption's noise, and the query ledger
/// tells inputs apart by their masks' seeds.
pub(crate) fn not_a_fresh_input() -> BackendError {
    BackendError::Refused(
        "input ciphertext refused: not a fresh encryption (expected the seeded form `heman encrypt` writes)".into(),
    )
}

/// The seam's class of a runtime error: the input's fault, or ours.
pub(crate) fn runtime_error(e: heman_runtime::RuntimeError) -> BackendError {
    match e {
        heman_runtime::RuntimeError::Input(m) => {
            BackendError::Refused(format!("inference failed on this input: {m}"))
        }
        e => BackendError::Internal(format!("inference: {e}")),
    }
}

/// Results of backend operations.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;
