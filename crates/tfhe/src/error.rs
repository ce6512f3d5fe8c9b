#[derive(Debug, thiserror::Error)]
pub enum TfheError {
    #[error("parameters: {0}")]
    Parameters(String),
    #[error("serialised {what}: {message}")]
    Serialization { what: &'static str, message: String },
    #[error("{0}")]
    Shape(String),
    #[error("lookup table: {0}")]
    LookupTable(String),
}

pub type Result<T, E = TfheError> = std::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, message: impl Into<String>) -> TfheError {
    TfheError::Serialization {
        what,
        message: message.into(),
    }
}
