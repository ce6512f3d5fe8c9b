//! Keys: secret key, public key, relinearisation and Galois keys, key generation.

mod generator;
mod public;
mod secret;

pub use generator::KeyGenerator;
pub use public::{
    galois_element_conjugate, galois_element_for_step, GaloisKeys, PublicKey, RelinearizationKey,
    SwitchingKey,
};
pub use secret::SecretKey;
