#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("compiler: {0}")]
    Compile(#[from] heman_compiler::CompileError),
    #[error("CKKS: {0}")]
    Ckks(#[from] heman_ckks::CkksError),
    #[error("plan needs {needed} levels after stage {stage}, the ciphertext has {available}")]
    OutOfLevels {
        stage: usize,
        needed: usize,
        available: usize,
    },
    #[error("input: {0}")]
    Input(String),
    #[error("compiled plan: {0}")]
    Plan(String),
    #[cfg(feature = "tfhe")]
    #[error("re-randomising the outputs: {0}")]
    Rerandomise(heman_tfhe::TfheError),
    #[error("stage {stage}: {message}")]
    Unsupported { stage: usize, message: String },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
