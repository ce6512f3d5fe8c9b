//! heman's backend seam: one interface to every scheme heman runs models
//! under. A backend compiles for the model owner and serves the compiled
//! model ([`ModelOwner`]: key checks, inference on fresh encryptions,
//! outputs re-randomised and flooded, per-stage timings, a cleartext
//! simulation), and serves the data owner ([`DataOwner`]: keys, encryption,
//! decryption). Everything crosses the seam as the bytes of heman's files,
//! so the CLI, the server and the bindings behave alike; the [`registry`]
//! is the one place that chooses a backend (by name, file header or
//! keyparams). A new backend is a folder here and one registry line.

#![warn(missing_docs)]

#[cfg(feature = "ckks")]
pub mod ckks;
pub mod error;
pub mod input;
mod interface;
pub mod keys_dir;
pub mod memory;
pub mod progress;
pub mod registry;
pub mod simulation;
#[cfg(feature = "tfhe")]
pub mod tfhe;

pub use error::{BackendError, Result};
pub use interface::{
    default_cache_bytes, Agreement, Backend, Calibration, Compilation, CompileOptions, DataOwner,
    DecryptionNoise, EvaluationKeys, Inference, KeyFiles, ModelOwner, ModelSource, Report,
    ServingOptions, StageTiming, TensorInfo,
};
pub use keys_dir::KeysDir;
pub use progress::{Progress, Silent};
