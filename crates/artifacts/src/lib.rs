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
/// `output_flooding` added).
pub const KEYPARAMS_VERSION: u32 = 2;

/// The backend a keyparams text names (`"ckks"` when it names none, as the
/// first keyparams files did).
pub fn keyparams_backend(json: &[u8], path: &std::path::Path) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| error::invalid(path, format!("not a heman keyparams file: {e}")))?;
    Ok(value
        .get("backend")
        .and_then(|b| b.as_str())
        .unwrap_or(ckks::BACKEND)
        .to_string())
}
