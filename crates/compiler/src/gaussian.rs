//! Gaussian samples for simulated noise (never for encryption: the scheme
//! crates sample their own noise from a CSPRNG).

use rand::Rng;

/// A standard normal sample (Box-Muller).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
