//! The crate's error type and result alias.

use std::fmt;
use std::path::PathBuf;

/// One node the importer cannot run, reported together with all others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedNode {
    /// The node's name, or `<op_type>_<index>` when the model leaves it unnamed.
    pub name: String,
    /// The ONNX operator type, e.g. `Resize`.
    pub op_type: String,
    /// The operator's domain as written in the model; empty for the default
    /// `ai.onnx` domain.
    pub domain: String,
    /// The model's default-domain operator set version.
    pub opset: i64,
}

impl fmt::Display for UnsupportedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = if self.domain.is_empty() {
            "ai.onnx"
        } else {
            &self.domain
        };
        write!(
            f,
            "node '{}' ({} from {} opset {})",
            self.name, self.op_type, domain, self.opset
        )
    }
}

/// Everything that can go wrong while importing, running or calibrating a
/// model, or while reading its data; each variant names the file, node or
/// input at fault so that the message alone locates the problem.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file or directory could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying operating-system error.
        error: std::io::Error,
    },
    /// The bytes are not an ONNX model heman can read: bad protobuf, no
    /// graph, or an operator set outside the supported range.
    #[error("{path}: not a valid ONNX model: {message}")]
    Decode {
        /// The model file (or the origin given for in-memory bytes).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The graph uses operators heman cannot import; all of them are listed,
    /// so that one attempt reveals every gap.
    #[error("{} unsupported operator(s): {}", .0.len(), list(.0))]
    UnsupportedOperators(Vec<UnsupportedNode>),
    /// A node of a supported operator has attributes or inputs heman refuses.
    #[error("node '{node}' ({op}): {message}")]
    InvalidNode {
        /// The node's name.
        node: String,
        /// The node's ONNX operator type.
        op: String,
        /// What is wrong with it.
        message: String,
    },
    /// The graph as a whole is malformed: missing inputs or outputs, values
    /// read before they are computed, bad initialisers, dynamic shapes.
    #[error("graph: {0}")]
    InvalidGraph(String),
    /// A tensor given for a graph input does not have the input's shape.
    #[error("input '{name}': expected shape {expected:?}, got {found:?}")]
    InputShape {
        /// The graph input's name.
        name: String,
        /// The shape the graph declares.
        expected: Vec<usize>,
        /// The shape of the tensor given.
        found: Vec<usize>,
    },
    /// A tensor given for a graph input holds a NaN or an infinity.
    #[error("input '{name}': element {index} is {value} (inputs must be finite numbers)")]
    NonFinite {
        /// The graph input's name.
        name: String,
        /// Row-major index of the first offending element.
        index: usize,
        /// The offending element.
        value: f64,
    },
    /// A `.npy` file (or archive member) is malformed or of an unsupported dtype.
    #[error("{path}: {message}")]
    Npy {
        /// The file, or the archive path joined with the member name.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An error raised while processing one sample of a set, tagged with the
    /// sample so that the culprit can be found among thousands.
    #[error("sample '{sample}': {error}")]
    InSample {
        /// The sample's name.
        sample: String,
        /// The error it caused.
        error: Box<ModelError>,
    },
    /// A calibration or evaluation set is not laid out as expected.
    #[error("{path}: {message}")]
    Dataset {
        /// The archive, directory or file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

fn list(nodes: &[UnsupportedNode]) -> String {
    nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The crate's result type, with [`ModelError`] as the default error.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |error| ModelError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Builds an [`ModelError::InvalidNode`] for `node` of kind `op`.
pub(crate) fn invalid(node: &str, op: &str, message: impl Into<String>) -> ModelError {
    ModelError::InvalidNode {
        node: node.to_string(),
        op: op.to_string(),
        message: message.into(),
    }
}
