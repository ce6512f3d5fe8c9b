//! Server errors and their mapping onto each protocol's error form: an HTTP
//! status with `{"error": "<message>"}`, or a gRPC status code with the
//! message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The client sent something malformed or inconsistent.
    #[error("{0}")]
    BadRequest(String),
    /// No model of that name (or version) in the repository.
    #[error("unknown model '{0}'")]
    UnknownModel(String),
    /// No such endpoint (HTTP).
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// An endpoint asked with the wrong HTTP method.
    #[error("method {0} not allowed on {1}")]
    MethodNotAllowed(String, String),
    /// No evaluation keys registered under that id (or not for this model).
    #[error("{0}")]
    UnknownKey(String),
    /// The request body exceeded the configured cap.
    #[error("request body larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// The server cannot take the request now: the queue for inference
    /// slots is full, or the bodies it holds fill its budget.
    #[error("server busy: {0}; retry later")]
    Busy(String),
    /// No valid bearer token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The client has used a quota of its own.
    #[error("{0}")]
    ClientQuota(String),
    /// The key has used the queries the model owner allows per key.
    #[error("{0}")]
    QueryBudget(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The inference took longer than the configured timeout.
    #[error("inference timed out after {0} s")]
    Timeout(u64),
    /// Something failed on the server's side.
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::UnknownKey(_) => StatusCode::BAD_REQUEST,
            Self::UnknownModel(_) | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QueryBudget(_) | Self::ClientQuota(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Busy(_) | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status this error is answered with.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::BadRequest(_) => tonic::Code::InvalidArgument,
            Self::UnknownModel(_) | Self::UnknownKey(_) => tonic::Code::NotFound,
            Self::NoRoute(_) | Self::MethodNotAllowed(..) => tonic::Code::Unimplemented,
            Self::TooLarge(_) | Self::QueryBudget(_) | Self::ClientQuota(_) => {
                tonic::Code::ResourceExhausted
            }
            Self::Unauthenticated(_) => tonic::Code::Unauthenticated,
            Self::Busy(_) | Self::ShuttingDown => tonic::Code::Unavailable,
            Self::Timeout(_) => tonic::Code::DeadlineExceeded,
            Self::Internal(_) => tonic::Code::Internal,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if matches!(self, Self::Unauthenticated(_)) {
            // RFC 6750, section 3: a 401 names the scheme it wants.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ServerError> for tonic::Status {
    fn from(e: ServerError) -> Self {
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}

/// Results of request handling.
pub type Result<T> = std::result::Result<T, ServerError>;
