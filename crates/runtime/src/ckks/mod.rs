//! CKKS plans: the model owner's [`Executor`] and output flooding, and the
//! data owner's packing of tensors to and from slot layouts.

pub mod bootstrapping;
pub mod client;
pub mod decryption_noise;
pub mod executor;
pub mod flooding;

pub use client::{
    decrypt_batch, decrypt_tensor, encrypt_batch, encrypt_slots, encrypt_tensor, encrypt_tensor_at,
    InputKey,
};
pub use decryption_noise::{decrypt_tensor_for_release, ReleaseNoise};
pub use executor::{Executor, PreparedPlan};
pub use flooding::{flooding_of, measure_output_noise, OutputNoise, StagePrecision};
