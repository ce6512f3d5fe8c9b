//! heman's runtime: runs compiled plans on ciphertexts (the model owner's
//! side) and turns tensors into ciphertexts and back (the data owner's side),
//! one folder per backend: [`ckks`] for [`heman_compiler::ckks::Plan`]s,
//! [`tfhe`] for [`heman_compiler::tfhe::Plan`]s.

#![warn(missing_docs)]

pub mod ckks;
pub mod error;
#[cfg(feature = "tfhe")]
pub mod tfhe;

pub use error::{Result, RuntimeError};
