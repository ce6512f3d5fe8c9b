//! heman's TFHE scheme layer: a thin layer over Zama's `tfhe` crate
//! (tfhe-rs, shortint's KS_PBS atomic pattern) for neural-network inference
//! in the style of Chillotti, Joye, Paillier, "Programmable bootstrapping
//! enables efficient homomorphic inference of deep neural networks" (CSCML
//! 2021):
//!
//! - [`ClientKey`] (the data owner's secret), [`CompressedServerKey`] (all the
//!   model owner receives) and its expanded [`ServerKey`];
//! - [`LweVector`]s of ciphertexts carrying integers at a chosen
//!   [`Encoding`], fresh ones in seeded form ([`SeededLweVector`]);
//! - linear combinations with signed integer weights ([`IntegerRows`]),
//!   in place on the ciphertext words;
//! - programmable bootstrapping with [`LookupTable`]s and
//!   [`ManyLookupTable`]s, parallel over values;
//! - the [`NoiseModel`] of every step and the probability that a bootstrap
//!   misreads its input;
//! - the data owner's [`OutputPublicKey`], with which the model owner
//!   re-randomises and floods every output before it leaves.
//!
//! It knows nothing of ONNX or tensors. Only tfhe-rs's 128-bit presets are
//! offered ([`Preset`]). tfhe-rs is free for research and prototyping;
//! commercial use needs Zama's patent licence.

#![warn(missing_docs)]

pub mod bootstrap;
pub mod encoding;
pub mod error;
pub mod keys;
pub mod linear;
pub mod lookup;
pub mod lwe;
pub mod noise;
pub mod params;
pub mod public_key;

pub use encoding::{Encoding, HALF_TORUS};
pub use error::{Result, TfheError};
pub use keys::{ClientKey, CompressedServerKey, ServerKey};
pub use linear::IntegerRows;
pub use lookup::{InputWindow, LookupTable, ManyLookupTable};
pub use lwe::{LweVector, SeededLweVector};
pub use noise::{error_probability, log2_error_probability, NoiseModel};
pub use params::{KeyChoice, Preset};
pub use public_key::OutputPublicKey;
