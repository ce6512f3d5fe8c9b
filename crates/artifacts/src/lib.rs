//! heman's files. Binary artifacts share one container: magic `HEMAN`, the
//! kind of content, a format version, the parameter fingerprint (CKKS
//! parameters, or for TFHE the preset and the input/output encodings), the
//! payload length and a SHA-256 of header and payload, so that a file of
//! another kind, another parameter set, a newer format, a truncated or a
//! damaged file is refused with a message saying which. `keyparams.json`
//! stays readable JSON; its `backend` field (`ckks`, `tfhe`) says which
//! backend's files go with it (module [`tfhe`]).

pub mod container;
pub mod error;
pub mod files;
pub mod keyparams;
pub mod tfhe;

pub use container::{Container, Kind};
pub use error::{ArtifactError, Result};
pub use files::{
    plan_fingerprint, read_public_key, read_secret_key, write_public_key, write_secret_key,
    CiphertextFile, CompiledModel, EvaluationKeys,
};
pub use keyparams::{KeyParams, TensorSpec};
