//! Typed errors of the compiler.

/// Everything that can stop a compilation: unsupported operators, graphs the
/// backends cannot lower, and budgets the parameters cannot meet.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Nodes the CKKS backend cannot run, each named with its operator.
    #[error(
        "{} node(s) the CKKS backend cannot run (it runs operators affine in their computed inputs, products of two computed tensors, and activations it approximates by polynomials): {}",
        .0.len(),
        .0.join(", ")
    )]
    UnsupportedNodes(Vec<String>),
    /// Nodes the TFHE backend cannot run, each named with its operator.
    #[error(
        "{} node(s) the TFHE backend cannot run (it runs affine operators in any dataflow, elementwise functions as lookups, products of two computed values and MaxPool): {}",
        .0.len(),
        .0.join(", ")
    )]
    UnsupportedForTfhe(Vec<String>),
    /// An accumulator or a read that the parameter set cannot hold.
    #[error("node '{node}': {message}")]
    Budget {
        /// The node whose values do not fit (or `input`, `(whole model)`).
        node: String,
        /// Why they do not fit.
        message: String,
    },
    /// An error of the TFHE scheme layer (presets, encodings, lookup tables).
    #[cfg(feature = "tfhe")]
    #[error("TFHE: {0}")]
    Tfhe(#[from] heman_tfhe::TfheError),
    /// A graph or input the compiler cannot handle: branching, an output
    /// off the chain, a missing calibrated range, a failed polynomial fit, an
    /// input of the wrong size.
    #[error("graph: {0}")]
    Graph(String),
    /// An error of the model crate while running the graph on calibration
    /// samples.
    #[error("model: {0}")]
    Model(#[from] heman_model::ModelError),
    /// No parameter set meets the requirements, or one cannot be built.
    #[error("parameters: {0}")]
    Parameters(String),
}

/// The crate's result type, failing with a [`CompileError`] by default.
pub type Result<T, E = CompileError> = std::result::Result<T, E>;
