//! heman's files. Binary artifacts share one container: magic `HEMAN`, the
//! kind of content (which backend wrote it and what it holds), a format
//! version, the parameter fingerprint (CKKS parameters, or for TFHE the
//! preset and the input/output encodings), the payload length and a SHA-256
//! of header and payload, so that a file of another kind, another parameter
//! set, another format, a truncated or a damaged file is refused with a
//! message saying which. `keyparams.json` stays readable JSON; its `backend`
//! field says which backend's files go with it. Each backend's files are in
//! its module ([`ckks`], [`tfhe`]), laid out the same way.

#![warn(missing_docs)]

pub mod ckks;
pub mod container;
pub mod error;
#[cfg(feature = "tfhe")]
pub mod tfhe;

pub use container::{Container, ContainerView, Expected, Kind, Role};
pub use error::{ArtifactError, Result};

/// The `format` field of every keyparams.json.
pub const KEYPARAMS_FORMAT: &str = "heman-keyparams";
/// The keyparams version this heman reads and writes (2: CKKS
/// `output_flooding` added; 3: `outputs`, the model's outputs with their
/// post-processing, in place of `postprocess`; 4: the CKKS output flooding
/// per class of coefficients, `on_stride`, `stride` and `off_stride`).
pub const KEYPARAMS_VERSION: u32 = 5;

/// The backend a keyparams text names (`"ckks"` when it names none, as the
/// first keyparams files did).
pub fn keyparams_backend(json: &[u8], path: &std::path::Path) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| error::invalid(path, format!("not a heman keyparams file: {e}")))?;
    Ok(backend_of(&value).to_string())
}

fn backend_of(value: &serde_json::Value) -> &str {
    value
        .get("backend")
        .and_then(|b| b.as_str())
        .unwrap_or(ckks::BACKEND)
}

/// Parses keyparams text of `backend` read from (or received as) `path`:
/// its format, backend and version are checked before its fields, so that
/// a file of another heman is refused by its version rather than by a
/// field it lacks.
pub(crate) fn parse_keyparams<T: serde::de::DeserializeOwned>(
    json: &[u8],
    backend: &str,
    path: &std::path::Path,
) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| error::invalid(path, format!("not a heman keyparams file: {e}")))?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != KEYPARAMS_FORMAT || backend_of(&value) != backend {
        return Err(error::invalid(
            path,
            format!(
                "format '{format}' backend '{}', expected '{KEYPARAMS_FORMAT}' backend '{backend}'",
                backend_of(&value)
            ),
        ));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(KEYPARAMS_VERSION) => {}
        other => {
            return Err(error::invalid(
                path,
                format!(
                    "keyparams version {}; this heman reads version {KEYPARAMS_VERSION}",
                    other.map_or("missing".into(), |v| v.to_string())
                ),
            ))
        }
    }
    serde_json::from_value(value)
        .map_err(|e| error::invalid(path, format!("not a heman {backend} keyparams file: {e}")))
}

/// Checks the outputs a keyparams or model file lists against the compiled
/// output's `elements` (see [`heman_compiler::graph::OutputTensor::check_all`]).
pub(crate) fn check_outputs(
    outputs: &[heman_compiler::graph::OutputTensor],
    elements: usize,
    path: &std::path::Path,
) -> Result<()> {
    heman_compiler::graph::OutputTensor::check_all(outputs, elements)
        .map_err(|e| error::invalid(path, format!("outputs: {e}")))
}
