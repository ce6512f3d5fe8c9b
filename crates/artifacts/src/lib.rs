//! heman's files. Binary artifacts share one container: magic `HEMAN`, the
//! kind of content, a format version, the CKKS parameter fingerprint, the
//! payload length and a SHA-256 of header and payload, so that a file of
//! another kind, another parameter set, a newer format, a truncated or a
//! damaged file is refused with a message saying which. `keyparams.json`
//! stays readable JSON.

pub mod container;
pub mod error;
pub mod files;
pub mod keyparams;

pub use container::{Container, Kind};
pub use error::{ArtifactError, Result};
pub use files::{
    plan_fingerprint, read_public_key, read_secret_key, write_public_key, write_secret_key,
    CiphertextFile, CompiledModel, EvaluationKeys,
};
pub use keyparams::{KeyParams, TensorSpec};
