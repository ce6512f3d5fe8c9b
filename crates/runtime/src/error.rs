//! What running a plan can fail with.

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The compiled plan cannot be evaluated (an approximation that does
    /// not rebuild).
    #[error("compiler: {0}")]
    Compile(#[from] heman_compiler::CompileError),
    /// A CKKS operation failed.
    #[error("CKKS: {0}")]
    Ckks(#[from] heman_ckks::CkksError),
    /// The ciphertexts have fewer levels than the plan's next stage needs.
    #[error("plan needs {needed} levels after stage {stage}, the ciphertext has {available}")]
    OutOfLevels {
        /// The stage.
        stage: usize,
        /// Levels it consumes.
        needed: usize,
        /// Levels left.
        available: usize,
    },
    /// The input does not fit the plan (the caller's fault).
    #[error("input: {0}")]
    Input(String),
    /// The compiled plan is inconsistent.
    #[error("compiled plan: {0}")]
    Plan(String),
    /// Output re-randomisation failed (TFHE).
    #[cfg(feature = "tfhe")]
    #[error("re-randomising the outputs: {0}")]
    Rerandomise(heman_tfhe::TfheError),
    /// A stage could not run.
    #[error("stage {stage}: {message}")]
    Unsupported {
        /// The stage.
        stage: usize,
        /// Why.
        message: String,
    },
}

/// Results of the runtime.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
