use std::fmt;
use std::path::PathBuf;

/// One node the importer cannot run, reported together with all others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedNode {
    pub name: String,
    pub op_type: String,
    pub domain: String,
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

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a valid ONNX model: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("{} unsupported operator(s): {}", .0.len(), list(.0))]
    UnsupportedOperators(Vec<UnsupportedNode>),
    #[error("node '{node}' ({op}): {message}")]
    InvalidNode {
        node: String,
        op: String,
        message: String,
    },
    #[error("graph: {0}")]
    InvalidGraph(String),
    #[error("input '{name}': expected shape {expected:?}, got {found:?}")]
    InputShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("input '{name}': element {index} is {value} (inputs must be finite numbers)")]
    NonFinite {
        name: String,
        index: usize,
        value: f64,
    },
    #[error("{path}: {message}")]
    Npy { path: PathBuf, message: String },
    #[error("sample '{sample}': {error}")]
    InSample {
        sample: String,
        error: Box<ModelError>,
    },
    #[error("{path}: {message}")]
    Dataset { path: PathBuf, message: String },
}

fn list(nodes: &[UnsupportedNode]) -> String {
    nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

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
