//! Safe helpers over [`crate::ffi`]: Triton's errors to and from Rust, and
//! its strings.

use std::ffi::{c_char, CStr, CString};
use std::os::raw::c_int;

use heman_server::ServerError;

use crate::ffi;

/// An error crossing to Triton: one of its codes and a message.
#[derive(Debug)]
pub struct Failure {
    /// A `TRITONSERVER_Error_Code`.
    pub code: c_int,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// A failure on this side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: ffi::ERROR_INTERNAL,
            message: message.into(),
        }
    }

    /// A request or configuration that is refused.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: ffi::ERROR_INVALID_ARG,
            message: message.into(),
        }
    }

    /// A new Triton error object holding this failure, owned by whoever it
    /// is handed to (Triton, when returned or sent).
    pub fn into_raw(self) -> *mut ffi::TRITONSERVER_Error {
        let message = CString::new(self.message.replace('\0', " ")).expect("no NUL left");
        // SAFETY: Triton copies the message; the pointer is valid for the call.
        unsafe { ffi::TRITONSERVER_ErrorNew(self.code, message.as_ptr()) }
    }
}

/// The Triton class of a serving error: the sender's (refused, unknown
/// key), a temporary one (busy), or this side's.
impl From<ServerError> for Failure {
    fn from(error: ServerError) -> Self {
        let code = match &error {
            ServerError::BadRequest(_)
            | ServerError::TooLarge(_)
            | ServerError::QueryBudget(_)
            | ServerError::ClientQuota(_) => ffi::ERROR_INVALID_ARG,
            ServerError::UnknownKey(_) | ServerError::UnknownModel(_) => ffi::ERROR_NOT_FOUND,
            ServerError::Busy(_) | ServerError::ShuttingDown | ServerError::Timeout(_) => {
                ffi::ERROR_UNAVAILABLE
            }
            _ => ffi::ERROR_INTERNAL,
        };
        Self {
            code,
            message: error.to_string(),
        }
    }
}

/// `Ok` for a null error pointer; otherwise the error's message (`what`
/// before it), the object deleted.
pub fn check(error: *mut ffi::TRITONSERVER_Error, what: &str) -> Result<(), Failure> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null error returned by Triton is ours to read and delete.
    let message = unsafe {
        let message = text(ffi::TRITONSERVER_ErrorMessage(error));
        ffi::TRITONSERVER_ErrorDelete(error);
        message
    };
    Err(Failure::internal(format!("{what}: {message}")))
}

/// A C string Triton owns, copied (`""` for null).
///
/// # Safety
/// `pointer` is null or a NUL-terminated string valid for the call.
pub unsafe fn text(pointer: *const c_char) -> String {
    if pointer.is_null() {
        return String::new();
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(pointer) }
        .to_string_lossy()
        .into_owned()
}
