//! RNS-CKKS approximate homomorphic encryption (Cheon-Kim-Kim-Song 2017; RNS variant of
//! Cheon-Han-Kim-Kim-Song 2018) with hybrid key switching (Han-Ki 2020) and hoisted rotations
//! (Halevi-Shoup 2018; Bossuat et al. 2021), over the `tfhe-ntt` number theoretic transform.
//!
//! This crate knows nothing of tensors or files: it offers parameters, keys, an encoder,
//! encryption, a homomorphic evaluator and a versioned binary serialisation.
//!
//! ```
//! use heman_ckks::*;
//! let params = CkksParameters::new(13, &[50, 40], &[50], 40).unwrap();
//! let mut kg = KeyGenerator::new(&params).unwrap();
//! let sk = kg.gen_secret_key();
//! let pk = kg.gen_public_key(&sk).unwrap();
//! let rlk = kg.gen_relin_key(&sk).unwrap();
//! let enc = Encoder::new(&params);
//! let encryptor = Encryptor::new(&params, &pk).unwrap();
//! let decryptor = Decryptor::new(&params, &sk).unwrap();
//! let eval = Evaluator::new(&params);
//! let x = [1.5, -2.0, 0.25];
//! let pt = enc.encode(&x, params.max_level(), params.default_scale()).unwrap();
//! let ct = encryptor.encrypt(&pt).unwrap();
//! let sq = eval.rescale(&eval.mul_relin(&ct, &ct, &rlk).unwrap()).unwrap();
//! let out = enc.decode(&decryptor.decrypt(&sq).unwrap());
//! assert!((out[1] - 4.0).abs() < 1e-4);
//! ```

#![warn(missing_docs)]

pub mod bootstrapping;
pub mod encoding;
pub mod encryption;
pub mod error;
pub mod evaluator;
pub mod keys;
pub mod linear_transform;
mod parallel;
pub mod params;
pub mod plaintext;
pub mod polynomial;
pub mod precision;
pub mod ring;
pub mod sampling;
pub mod serialization;

pub use bootstrapping::{
    Bootstrapper, BootstrappingKeys, BootstrappingKeysRef, BootstrappingParameters,
    EncapsulationKeys,
};
pub use encoding::Encoder;
pub use encryption::{Decryptor, Encryptor, Flooding};
pub use error::{CkksError, Result};
pub use evaluator::{Decomposed, Evaluator, WeightedTerms};
pub use keys::{GaloisKeys, KeyGenerator, PublicKey, RelinearizationKey, SecretKey, SwitchingKey};
pub use linear_transform::{EncodedLinearTransform, LinearTransform};
pub use num_complex::Complex64;
pub use params::{CkksParameters, SecretDistribution};
pub use plaintext::{Ciphertext, Plaintext};
pub use polynomial::{ChebyshevApproximation, PolynomialEvaluator};
pub use precision::PrecisionStats;
pub use serialization::{inspect, ObjectInfo, ObjectKind};
