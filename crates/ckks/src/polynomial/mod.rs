//! Polynomial approximation and homomorphic polynomial evaluation.
//!
//! Activations (ReLU, sigmoid, tanh, ...) are not polynomials, so they are replaced by a
//! Chebyshev interpolant on the interval their inputs are known to lie in
//! ([`ChebyshevApproximation`], plain f64), and the interpolant is evaluated on ciphertexts
//! with the baby-step giant-step algorithm in the optimal depth ceil(log2(d + 1)) (plus one
//! level for the change of variable when the interval's width is not 2 / integer), landing on
//! a caller-chosen scale ([`PolynomialEvaluator`]).

pub mod chebyshev;
mod evaluation;
pub(crate) mod plan;

pub use chebyshev::{functions, ChebyshevApproximation};
pub use evaluation::PolynomialEvaluator;
