//! Server errors and their mapping onto protocol errors (`{"error": ...}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The client sent something malformed or inconsistent (400).
    #[error("{0}")]
    BadRequest(String),
    /// No model of that name (or version) in the repository (404).
    #[error("unknown model '{0}'")]
    UnknownModel(String),
    /// The request body exceeded the configured cap (413).
    #[error("request body larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The inference took longer than the configured timeout (504).
    #[error("inference timed out after {0} s")]
    Timeout(u64),
    /// Something failed on the server's side (500).
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), axum::Json(body)).into_response()
    }
}

/// Results of request handling.
pub type Result<T> = std::result::Result<T, ServerError>;
