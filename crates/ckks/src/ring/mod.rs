//! Polynomial ring arithmetic in RNS form: modular arithmetic, prime generation, NTT,
//! automorphisms and basis conversion.

pub mod basis;
pub mod context;
pub mod ifma;
pub mod kernels;
pub mod modular;
pub mod poly;
pub mod primes;

pub use basis::{BasisConverter, CrtReconstructor};
pub use context::RingContext;
pub use modular::Modulus;
pub use poly::Poly;
