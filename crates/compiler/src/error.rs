#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(
        "{} node(s) the CKKS backend cannot run (it needs operators affine in one computed input, x*x, or activations it approximates by polynomials): {}",
        .0.len(),
        .0.join(", ")
    )]
    UnsupportedNodes(Vec<String>),
    #[error(
        "{} node(s) the TFHE backend cannot run (it needs one chain of affine operators, x*x, x^k, elementwise activations and MaxPool): {}",
        .0.len(),
        .0.join(", ")
    )]
    UnsupportedForTfhe(Vec<String>),
    /// An accumulator or a read that the parameter set cannot hold.
    #[error("node '{node}': {message}")]
    Budget { node: String, message: String },
    #[cfg(feature = "tfhe")]
    #[error("TFHE: {0}")]
    Tfhe(#[from] heman_tfhe::TfheError),
    #[error("graph: {0}")]
    Graph(String),
    #[error("model: {0}")]
    Model(#[from] heman_model::ModelError),
    #[error("parameters: {0}")]
    Parameters(String),
    #[error("layout: {0}")]
    Layout(String),
}

pub type Result<T, E = CompileError> = std::result::Result<T, E>;
