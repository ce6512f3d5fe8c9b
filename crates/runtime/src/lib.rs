//! heman's runtime: runs a compiled [`Plan`](heman_compiler::Plan) on CKKS
//! ciphertexts (the model owner's side), and packs/unpacks tensors to and
//! from slot layouts (the data owner's side); module [`tfhe`] does the same
//! for TFHE plans.

#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod executor;
pub mod flooding;
#[cfg(feature = "tfhe")]
pub mod tfhe;

pub use client::{decrypt_tensor, encrypt_tensor, InputKey};
pub use error::{Result, RuntimeError};
pub use executor::{stage_name, Executor, PreparedPlan};
pub use flooding::{flood_outputs, measure_output_noise, OutputNoise};
