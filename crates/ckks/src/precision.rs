//! Precision statistics of decrypted slots against the values they should hold, in bits
//! (-log2 of the error), the way Lattigo reports them (`ckks/precision.go`): minimum,
//! maximum, mean and median over the slots, for the real part, the imaginary part and the
//! complex modulus of the error.

use num_complex::Complex64;
use std::fmt;

/// Minimum, maximum, mean and median precision (bits) of one error component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitStatistics {
    /// Worst slot.
    pub min: f64,
    /// Best slot.
    pub max: f64,
    /// Mean over the slots of the bits (not the bits of the mean error).
    pub mean: f64,
    /// Median over the slots.
    pub median: f64,
}

impl BitStatistics {
    fn of(mut bits: Vec<f64>) -> Self {
        bits.sort_by(f64::total_cmp);
        let n = bits.len();
        if n == 0 {
            return Self {
                min: f64::NAN,
                max: f64::NAN,
                mean: f64::NAN,
                median: f64::NAN,
            };
        }
        let median = if n % 2 == 1 {
            bits[n / 2]
        } else {
            (bits[n / 2 - 1] + bits[n / 2]) / 2.0
        };
        Self {
            min: bits[0],
            max: bits[n - 1],
            mean: bits.iter().sum::<f64>() / n as f64,
            median,
        }
    }
}

/// Precision of a vector of slots against a reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionStats {
    /// Of the real parts' errors.
    pub real: BitStatistics,
    /// Of the imaginary parts' errors.
    pub imag: BitStatistics,
    /// Of |error|.
    pub l2: BitStatistics,
    /// The largest |error|.
    pub max_error: f64,
}

/// Bits of precision of an error: -log2|e|, capped at 64 for an exact slot (a zero error
/// would be infinitely precise and dominate the mean).
fn bits(e: f64) -> f64 {
    (-e.abs().log2()).min(64.0)
}

impl PrecisionStats {
    /// Statistics of `have - want`, slot by slot (the shorter length counts).
    pub fn new(want: &[Complex64], have: &[Complex64]) -> Self {
        let errors: Vec<Complex64> = want.iter().zip(have).map(|(w, h)| h - w).collect();
        Self {
            real: BitStatistics::of(errors.iter().map(|e| bits(e.re)).collect()),
            imag: BitStatistics::of(errors.iter().map(|e| bits(e.im)).collect()),
            l2: BitStatistics::of(errors.iter().map(|e| bits(e.norm())).collect()),
            max_error: errors.iter().fold(0.0f64, |m, e| m.max(e.norm())),
        }
    }

    /// As [`PrecisionStats::new`] for real values (imaginary parts of `have` count as error).
    pub fn of_real(want: &[f64], have: &[Complex64]) -> Self {
        let want: Vec<Complex64> = want.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        Self::new(&want, have)
    }
}

impl fmt::Display for PrecisionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "           real    imag      l2   (bits)")?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, get: fn(&BitStatistics) -> f64| {
            writeln!(
                f,
                "{name:<8} {:>6.2}  {:>6.2}  {:>6.2}",
                get(&self.real),
                get(&self.imag),
                get(&self.l2)
            )
        };
        row(f, "min", |s| s.min)?;
        row(f, "max", |s| s.max)?;
        row(f, "mean", |s| s.mean)?;
        row(f, "median", |s| s.median)?;
        write!(f, "max |error| {:.3e}", self.max_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_of_known_errors() {
        let want = [Complex64::new(1.0, 0.0); 4];
        let have = [
            Complex64::new(1.0 + 2f64.powi(-10), 0.0),
            Complex64::new(1.0 - 2f64.powi(-20), 2f64.powi(-30)),
            Complex64::new(1.0 + 2f64.powi(-12), 0.0),
            Complex64::new(1.0 + 2f64.powi(-14), 0.0),
        ];
        let s = PrecisionStats::new(&want, &have);
        assert!((s.real.min - 10.0).abs() < 1e-9);
        assert!((s.real.max - 20.0).abs() < 1e-6);
        assert!((s.real.median - 13.0).abs() < 1e-9);
        assert!((s.real.mean - 14.0).abs() < 1e-6);
        assert!((s.imag.min - 30.0).abs() < 1e-9);
        assert!((s.max_error - 2f64.powi(-10)).abs() < 1e-15);
    }
}
