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
    /// The scale the values are carried at.
    pub encoding: Encoding,
    /// Number of values: the window holds `0..count`.
    pub count: u64,
}

/// Where the table entries of one function start and how they are read.
struct Layout {
    /// Torus units per table position: 2^64 / 2N.
    step: u128,
    delta: u128,
    last: u64,
    /// Entries whose centre lies at or past this torus offset hold the
    /// next function's (or the mirrored first function's) value at 0.
    wrap_from: u128,
}

impl Layout {
    /// The input value an entry at `position` (within one function's
    /// share) holds, or `None` for the wrap-around entries.
    ///
    /// tfhe-rs's centred modulus switch subtracts half a position before
    /// rounding, so a noise-free phase `p` selects position `floor(p /
    /// step)`. An entry holds the value whose phase falls in its position
    /// (the one nearest its centre when several do), else the value nearest
    /// its centre.
    fn value_at(&self, position: u128) -> Option<u64> {
        let (start, end) = (position * self.step, (position + 1) * self.step);
        let first = start.div_ceil(self.delta);
        let past = end.div_ceil(self.delta);
        let centre = start + self.step / 2;
        let nearest = (centre + self.delta / 2) / self.delta;
        let last = self.last as u128;
        if first < past && first <= last {
            Some(nearest.clamp(first, (past - 1).min(last)) as u64)
        } else if centre >= self.wrap_from {
            None
        } else {
            Some(nearest.min(last) as u64)
        }
    }
}

impl InputWindow {
    /// The finest window of `count` values that `functions` tables of the
    /// preset can read.
    pub fn finest(preset: Preset, count: u64, functions: usize) -> Self {
        let span = HALF_TORUS / functions.max(1) as u128;
        let step = step(preset.polynomial_size());
        let count = count.max(1);
        // count * delta <= span, and the last value's position must lie
        // below the wrap-around entries: (count - 1) * delta + step < span.
        let mut delta = span / count as u128;
        if count > 1 {
            delta = delta.min((span - step - 1) / (count as u128 - 1));
        }
        Self {
            encoding: Encoding::new(delta.min(u64::MAX as u128) as u64),
            count,
        }
    }

    fn layout(self, preset: Preset, functions: usize) -> Result<Layout> {
        let span = HALF_TORUS / functions as u128;
        let delta = self.encoding.delta as u128;
        let step = step(preset.polynomial_size());
        let last = self.count.saturating_sub(1);
        if self.count == 0
            || delta == 0
            || self.count as u128 * delta > span
            || last as u128 * delta + step >= span
        {
            return Err(TfheError::LookupTable(format!(
                "{} values at delta 2^{:.2} do not fit the 2^{:.2} torus units {} table(s) of N = {} leave each",
                self.count,
                (delta as f64).log2(),
                (span as f64).log2(),
                functions,
                preset.polynomial_size()
            )));
        }
        Ok(Layout {
            step,
            delta,
            last,
            wrap_from: (last as u128 * delta + span) / 2,
        })
    }

    /// The value a noise-free bootstrap reads for input `u`: `u` itself
    /// while a table position holds at most one value (`count <= N`),
    /// else `u` rounded to the value its position stands for.
    pub fn read(self, preset: Preset, functions: usize, u: u64) -> Result<u64> {
        let layout = self.layout(preset, functions)?;
        let position = (u.min(layout.last) as u128 * layout.delta) / layout.step;
        Ok(layout.value_at(position).unwrap_or(0))
    }
}

impl InputWindow {
    /// What a single-function table of this window yields for a (noisy)
    /// `phase`: the input value whose entry is read and whether the
    /// negacyclic rotation negates it. Phases past the top of the window
    /// wrap around: this is how a misread looks, for simulations.
    pub fn read_phase(self, preset: Preset, phase: u64) -> Result<(u64, bool)> {
        let layout = self.layout(preset, 1)?;
        let (position, negated) = if (phase as u128) < HALF_TORUS {
            (phase as u128 / layout.step, false)
        } else {
            ((phase as u128 - HALF_TORUS) / layout.step, true)
        };
        // The wrap-around entries hold -f(0).
        Ok(match layout.value_at(position) {
            Some(u) => (u, negated),
            None => (0, !negated),
        })
    }
}

fn step(polynomial_size: usize) -> u128 {
    (1u128 << 64) / (2 * polynomial_size as u128)
}

/// Fills `body` (N words) with `functions` sub-tables over `window`; each
/// function maps an input value to an output torus plaintext.
fn fill(
    body: &mut [u64],
    preset: Preset,
    window: InputWindow,
    functions: &[&dyn Fn(u64) -> u64],
) -> Result<()> {
    let k = functions.len();
    let n = body.len();
    if k == 0 || !n.is_multiple_of(k) {
        return Err(TfheError::LookupTable(format!(
            "{k} functions do not divide {n} positions"
        )));
    }
    let layout = window.layout(preset, k)?;
    let stride = n / k;
    for (i, f) in functions.iter().enumerate() {
        let wrapped = match functions.get(i + 1) {
            Some(next) => next(0),
            None => functions[0](0).wrapping_neg(),
        };
        let mut cached: Option<(u64, u64)> = None;
        for (d, entry) in body[i * stride..(i + 1) * stride].iter_mut().enumerate() {
            *entry = match layout.value_at(d as u128) {
                None => wrapped,
                Some(u) => match cached {
                    Some((cu, cv)) if cu == u => cv,
                    _ => {
                        let v = f(u);
                        cached = Some((u, v));
                        v
                    }
                },
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
        fill(acc.get_mut_body().as_mut(), preset, window, &[&f])?;
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
        fill(acc.get_mut_body().as_mut(), preset, window, functions)?;
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

    /// Number of functions stacked in the table (outputs per bootstrap).
    pub fn function_count(&self) -> usize {
        self.table.function_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_entries_follow_the_window() {
        let preset = Preset::Message2Carry2;
        let n = preset.polynomial_size();
        let mut body = vec![0u64; n];
        // 16 values spanning the half torus: boxes of N / 16 = 128 positions,
        // the first half-box of value 0 wrapped to the top.
        let window = InputWindow {
            encoding: Encoding::fitting(16, HALF_TORUS),
            count: 16,
        };
        fill(&mut body, preset, window, &[&|u| u * 10]).unwrap();
        assert_eq!(&body[..64], &[0; 64]);
        assert_eq!(body[64], 10);
        assert_eq!(body[n - 65], 150);
        assert_eq!(body[n - 64], 0);
        fill(&mut body, preset, window, &[&|u| u + 1]).unwrap();
        assert_eq!(body[n - 1], 1u64.wrapping_neg());
        // Two functions need the window in a quarter of the torus.
        assert!(fill(&mut body, preset, window, &[&|u| u, &|u| u]).is_err());
        let half = InputWindow::finest(preset, 16, 2);
        fill(&mut body, preset, half, &[&|u| u, &|u| 100 + u]).unwrap();
        assert_eq!(body[32], 1);
        assert_eq!(
            body[n / 2 - 1],
            100,
            "the first table's top leads into the second's 0"
        );
        assert_eq!(body[n / 2 + 32], 101);
        assert_eq!(body[n - 1], 0u64.wrapping_neg());
    }

    #[test]
    fn reads_are_exact_up_to_n_values_and_rounded_beyond() {
        let preset = Preset::Message2Carry2;
        let n = preset.polynomial_size() as u64;
        for count in [2, 16, 1000, n - 2, n - 1] {
            let w = InputWindow::finest(preset, count, 1);
            for u in 0..count {
                assert_eq!(w.read(preset, 1, u).unwrap(), u, "count {count}, u {u}");
            }
        }
        for count in [n, 4 * n] {
            let w = InputWindow::finest(preset, count, 1);
            for u in [0, 1, 2, 3, 4, 5, 1001, count - 1] {
                let read = w.read(preset, 1, u).unwrap();
                assert!(read.abs_diff(u) <= 2, "{u} read as {read}");
            }
        }
        let w = InputWindow::finest(preset, 16, 1);
        let phase = |u: i64| w.encoding.encode(u);
        assert_eq!(w.read_phase(preset, phase(3)).unwrap(), (3, false));
        assert_eq!(
            w.read_phase(preset, phase(0).wrapping_sub(5)).unwrap(),
            (0, false)
        );
        assert_eq!(w.read_phase(preset, phase(16)).unwrap(), (0, true));
        assert_eq!(w.read_phase(preset, phase(19)).unwrap(), (3, true));
        assert!(InputWindow {
            encoding: Encoding::new(1 << 59),
            count: 17
        }
        .read(preset, 1, 0)
        .is_err());
    }
}
