#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(
        "{} node(s) the CKKS backend cannot run (it needs operators affine in one computed input, x*x, or activations it approximates by polynomials): {}",
        .0.len(),
        .0.join(", ")
    )]
    UnsupportedNodes(Vec<String>),
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
