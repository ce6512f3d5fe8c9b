//! heman's errors as Python exceptions: one base class, [`HemanError`], and
//! one subclass per class of the seam's errors, each with the Rust message.

use heman_backend::BackendError;
use pyo3::prelude::*;

pyo3::create_exception!(
    heman,
    HemanError,
    pyo3::exceptions::PyException,
    "Base class of every error heman raises."
);
pyo3::create_exception!(
    heman,
    RefusedError,
    HemanError,
    "Bytes or an array from outside are refused: keys, ciphertexts or an input that do not fit the model (wrong shape, foreign keys, damaged bytes)."
);
pyo3::create_exception!(
    heman,
    CompileError,
    HemanError,
    "The model cannot be compiled as asked: an option that does not apply, a layer the backend cannot run, a budget it cannot meet."
);
pyo3::create_exception!(
    heman,
    ModelError,
    HemanError,
    "The ONNX model or its calibration cannot be read or run."
);
pyo3::create_exception!(
    heman,
    FileError,
    HemanError,
    "A file of this party's own is unreadable or does not belong (compiled model, keyparams, keys directory)."
);
pyo3::create_exception!(
    heman,
    ServerError,
    HemanError,
    "A `heman serve` server could not be reached or answered with an error."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("HemanError", py.get_type::<HemanError>())?;
    m.add("RefusedError", py.get_type::<RefusedError>())?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    Ok(())
}

/// The message of an error and of every cause its own message leaves out.
pub fn message(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text = format!("{text}: {line}");
        }
        source = cause.source();
    }
    text
}

/// The Python exception of a seam error.
pub fn backend(error: BackendError) -> PyErr {
    let text = message(&error);
    match error {
        BackendError::Refused(_) => RefusedError::new_err(text),
        BackendError::Compile(_) => CompileError::new_err(text),
        BackendError::Model(_) => ModelError::new_err(text),
        BackendError::Artifact(_) => FileError::new_err(text),
        BackendError::Internal(_) => HemanError::new_err(text),
    }
}

/// The Python exception of a model-crate error (reading ONNX or arrays).
pub fn model(error: heman_model::ModelError) -> PyErr {
    backend(BackendError::Model(error))
}

/// The Python exception of a server client's error.
pub fn server(error: heman_server::client::ClientError) -> PyErr {
    ServerError::new_err(message(&error))
}
