//! TFHE plans: the model owner's [`Executor`] (server key only) and the data
//! owner's quantise-encrypt and decrypt-dequantise steps.

pub mod client;
pub mod executor;

pub use client::{decrypt_integers, decrypt_output, encrypt_input};
pub use executor::{Executor, StageTiming};
