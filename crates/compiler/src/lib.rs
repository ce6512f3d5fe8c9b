//! heman's compiler: from a model graph to a plan each backend runs.
//!
//! [`graph`] is the front end both share (stages, probed affine maps,
//! post-processing). [`ckks`] lowers to a [`ckks::Plan`] of slot operations
//! on CKKS ciphertexts: affine chains become one sparse linear map each,
//! lowered to baby-step giant-step diagonal products over layouts chosen by
//! cost. [`tfhe`] lowers to a quantised [`tfhe::Plan`] of integer weighted
//! sums and programmable bootstraps.

#![warn(missing_docs)]

pub mod ckks;
pub mod error;
pub mod gaussian;
pub mod graph;
#[cfg(feature = "tfhe")]
pub mod tfhe;

pub use error::{CompileError, Result};
