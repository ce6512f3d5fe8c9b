//! Lookup tables for programmable bootstrapping.
//!
//! The bootstrap switches its input to 2N positions of the torus and rotates
//! the table polynomial by that many steps; the constant coefficient it
//! extracts is the table's entry at the position, negated in the upper half
//! (the rotation is negacyclic). A table therefore covers the lower half
//! torus, `[0, 2^63)`, on N positions (Chillotti, Joye, Paillier 2021, "PBS
//! enables efficient homomorphic inference of deep neural networks").
//!
//! heman's inputs are integers `u = 0..count` at a scale `delta` with
//! `count * delta <= 2^63`; each table entry holds the output for the value
//! nearest its position. Noise below value 0 wraps around to the top of the
//! upper half, where the mirror of `-f(0)` gives `f(0)` again; positions
//! above the last value's half-box up to the middle of the unused gap give
//! the last value, the rest belong to that wrap-around.
//!
//! A many-lookup table (Carpov, Izabachene, Mollimard, "New techniques for
//! multi-value input homomorphic evaluation and applications", CT-RSA 2019;
//! Chillotti, Ligier, Orfila, Tap, "Improved programmable bootstrapping with
//! larger precision and efficient arithmetic circuits for TFHE", ASIACRYPT
//! 2021) stacks k functions in one polynomial, each on N/k positions; one
//! blind rotation then yields all k outputs by extracting k coefficients.
//! The input window shrinks to 2^63 / k.

use tfhe::core_crypto::prelude::{CiphertextModulus, GlweCiphertext, GlweSize, PolynomialSize};
use tfhe::shortint::ciphertext::MaxDegree;
use tfhe::shortint::parameters::Degree;
use tfhe::shortint::server_key::{LookupTableOwned, ManyLookupTableOwned};

use crate::encoding::{Encoding, HALF_TORUS};
use crate::error::{Result, TfheError};
use crate::params::Preset;

/// The integers a bootstrap reads: `0..count` at `encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputWindow {
    pub encoding: Encoding,
    pub count: u64,
}

impl InputWindow {
    /// Checks that the window fits the half torus shared by `functions` tables.
    fn check(self, functions: usize) -> Result<()> {
        let span = self.count as u128 * self.encoding.delta as u128;
        let limit = HALF_TORUS / functions as u128;
        if self.count == 0 || self.encoding.delta == 0 || span > limit {
            return Err(TfheError::LookupTable(format!(
                "{} values at delta 2^{:.2} span 2^{:.2} of the torus; {} table(s) allow 2^{:.2}",
                self.count,
                (self.encoding.delta as f64).log2(),
                (span as f64).log2(),
                functions,
                (limit as f64).log2()
            )));
        }
        Ok(())
    }
}

/// Fills `body` (N words) with `functions` sub-tables over `window`; each
/// function maps an input value to an output torus plaintext.
fn fill(body: &mut [u64], window: InputWindow, functions: &[&dyn Fn(u64) -> u64]) -> Result<()> {
    let k = functions.len();
    let n = body.len();
    if k == 0 || !n.is_multiple_of(k) {
        return Err(TfheError::LookupTable(format!(
            "{k} functions do not divide {n} positions"
        )));
    }
    window.check(k)?;
    let stride = n / k;
    let delta = window.encoding.delta as u128;
    let last = window.count - 1;
    let span = HALF_TORUS / k as u128;
    // Positions past this torus offset wrap around to the next value 0.
    let wrap_from = (last as u128 * delta + span) / 2;
    // Torus units per position: 2^64 / 2N.
    let step = (1u128 << 64) / (2 * n as u128);
    for (i, f) in functions.iter().enumerate() {
        let wrapped = match functions.get(i + 1) {
            Some(next) => next(0),
            None => functions[0](0).wrapping_neg(),
        };
        let mut cached: Option<(u64, u64)> = None;
        for (d, entry) in body[i * stride..(i + 1) * stride].iter_mut().enumerate() {
            let torus = d as u128 * step;
            *entry = if torus >= wrap_from {
                wrapped
            } else {
                let u = ((torus + delta / 2) / delta).min(last as u128) as u64;
                match cached {
                    Some((cu, cv)) if cu == u => cv,
                    _ => {
                        let v = f(u);
                        cached = Some((u, v));
                        v
                    }
                }
            };
        }
    }
    Ok(())
}

fn accumulator(preset: Preset) -> GlweCiphertext<Vec<u64>> {
    let p = preset.parameters();
    GlweCiphertext::new(
        0,
        GlweSize(p.glwe_dimension.0 + 1),
        PolynomialSize(p.polynomial_size.0),
        CiphertextModulus::new_native(),
    )
}

/// One function's table for one input window.
#[derive(Clone)]
pub struct LookupTable {
    pub(crate) table: LookupTableOwned,
}

impl LookupTable {
    /// The table of `f` (input value to output torus plaintext) over `window`.
    pub fn new(preset: Preset, window: InputWindow, f: impl Fn(u64) -> u64) -> Result<Self> {
        let mut acc = accumulator(preset);
        fill(acc.get_mut_body().as_mut(), window, &[&f])?;
        Ok(Self {
            table: LookupTableOwned {
                acc,
                degree: Degree::new(preset.nominal_values() - 1),
            },
        })
    }
}

/// Several functions of one input, evaluated by one bootstrap.
#[derive(Clone)]
pub struct ManyLookupTable {
    pub(crate) table: ManyLookupTableOwned,
}

impl ManyLookupTable {
    /// The stacked tables of `functions` over `window` (which must fit in a
    /// `1 / functions.len()` share of the half torus).
    pub fn new(
        preset: Preset,
        window: InputWindow,
        functions: &[&dyn Fn(u64) -> u64],
    ) -> Result<Self> {
        let mut acc = accumulator(preset);
        fill(acc.get_mut_body().as_mut(), window, functions)?;
        let degree = preset.nominal_values() - 1;
        Ok(Self {
            table: ManyLookupTableOwned {
                acc,
                input_max_degree: MaxDegree::new(degree),
                sample_extraction_stride: preset.polynomial_size() / functions.len(),
                per_function_output_degree: vec![Degree::new(degree); functions.len()],
            },
        })
    }

    pub fn function_count(&self) -> usize {
        self.table.function_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_entries_follow_the_window() {
        let n = 64;
        let mut body = vec![0u64; n];
        // 8 values spanning the half torus: boxes of 8 positions.
        let window = InputWindow {
            encoding: Encoding::fitting(8, HALF_TORUS),
            count: 8,
        };
        fill(&mut body, window, &[&|u| u * 10]).unwrap();
        assert_eq!(&body[..5], &[0, 0, 0, 0, 10]);
        assert_eq!(body[56], 70);
        assert_eq!(body[59], 70);
        // The top half-box wraps to -f(0) = 0 here.
        assert_eq!(body[60], 0);
        fill(&mut body, window, &[&|u| u + 1]).unwrap();
        assert_eq!(body[63], 1u64.wrapping_neg());
        // Two functions: each gets 32 positions, values must fit in 2^62.
        assert!(fill(&mut body, window, &[&|u| u, &|u| u]).is_err());
        let half = InputWindow {
            encoding: Encoding::fitting(8, HALF_TORUS / 2),
            count: 8,
        };
        fill(&mut body, half, &[&|u| u, &|u| 100 + u]).unwrap();
        assert_eq!(body[4], 1);
        assert_eq!(
            body[31], 100,
            "top of the first table leads into the second's 0"
        );
        assert_eq!(body[36], 101);
        assert_eq!(body[63], 0u64.wrapping_neg());
    }
}
