//! Activation polynomials fitted to the values calibration saw.
//!
//! Interpolation at Chebyshev nodes spreads the approximation error evenly
//! over the calibrated interval, but an activation's inputs crowd near its
//! middle (a BatchNorm output spans [-8, 8] and is within [-2, 2] most of
//! the time): a ReLU6 of degree 127 interpolated over [-8.6, 8.4] still
//! flipped 13 of 200 predictions of a MobileNetV2 block. A least-squares fit
//! weighted by the observed inputs (the empirical distribution of the
//! activation's input over the calibration set) puts the accuracy where the
//! values are, while a share of the weight on Chebyshev nodes of the whole
//! interval keeps the polynomial close to the function where calibration
//! saw few values. The fit is solved by its normal equations in the
//! Chebyshev basis (well conditioned on the interval's nodes).

/// Share of the total weight put on Chebyshev nodes spread over the whole
/// interval (the rest on the observed inputs).
pub const INTERVAL_WEIGHT: f64 = 0.2;

/// Most observed inputs one fit reads (a thinned sample beyond that).
pub const MAX_POINTS: usize = 4096;

/// `T_0(t), ..., T_degree(t)`.
fn chebyshev_basis(t: f64, degree: usize) -> Vec<f64> {
    let mut basis = Vec::with_capacity(degree + 1);
    basis.push(1.0);
    if degree > 0 {
        basis.push(t);
    }
    for k in 2..=degree {
        basis.push(2.0 * t * basis[k - 1] - basis[k - 2]);
    }
    basis
}

/// Chebyshev coefficients on `[lo, hi]` of the degree-`degree` polynomial
/// nearest to `f` in squared error over `points` (each weighted alike) and
/// Chebyshev nodes of the interval ([`INTERVAL_WEIGHT`] of the weight);
/// `None` when the system cannot be solved (a degenerate interval).
pub fn fit(
    f: &dyn Fn(f64) -> f64,
    (lo, hi): (f64, f64),
    degree: usize,
    points: &[f64],
) -> Option<Vec<f64>> {
    let (mid, half) = ((lo + hi) / 2.0, (hi - lo) / 2.0);
    let n = degree + 1;
    let nodes = 2 * n;
    let inside: Vec<f64> = points
        .iter()
        .copied()
        .filter(|x| (lo..=hi).contains(x))
        .collect();
    let data_weight = if inside.is_empty() {
        0.0
    } else {
        (1.0 - INTERVAL_WEIGHT) / inside.len() as f64
    };
    let node_weight = if inside.is_empty() {
        1.0
    } else {
        INTERVAL_WEIGHT
    } / nodes as f64;
    let weighted = inside
        .iter()
        .map(|&x| (x, data_weight))
        .chain((0..nodes).map(|k| {
            let t = (std::f64::consts::PI * (k as f64 + 0.5) / nodes as f64).cos();
            (mid + half * t, node_weight)
        }));
    // Normal equations G c = r of the weighted least squares.
    let mut gram = vec![0.0; n * n];
    let mut rhs = vec![0.0; n];
    for (x, w) in weighted {
        let basis = chebyshev_basis((x - mid) / half, degree);
        let y = f(x);
        for i in 0..n {
            rhs[i] += w * basis[i] * y;
            for j in 0..=i {
                gram[i * n + j] += w * basis[i] * basis[j];
            }
        }
    }
    cholesky_solve(&mut gram, &mut rhs, n)?;
    Some(rhs)
}

/// Solves `G x = r` in place for a symmetric positive definite `G` (lower
/// triangle given, row-major `n x n`); `x` replaces `r`.
fn cholesky_solve(g: &mut [f64], r: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut d = g[j * n + j];
        for k in 0..j {
            d -= g[j * n + k] * g[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        g[j * n + j] = d;
        for i in j + 1..n {
            let mut s = g[i * n + j];
            for k in 0..j {
                s -= g[i * n + k] * g[j * n + k];
            }
            g[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = r[i];
        for k in 0..i {
            s -= g[i * n + k] * r[k];
        }
        r[i] = s / g[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = r[i];
        for k in i + 1..n {
            s -= g[k * n + i] * r[k];
        }
        r[i] = s / g[i * n + i];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relu6(x: f64) -> f64 {
        x.clamp(0.0, 6.0)
    }

    /// Inputs crowded near 0 with rare excursions to the interval's ends.
    fn crowded() -> Vec<f64> {
        (0..4000)
            .map(|k| {
                let u = (k as f64 * 0.618_034).fract() * 2.0 - 1.0;
                2.0 * u.powi(3) + if k % 97 == 0 { 6.0 * u } else { 0.0 }
            })
            .collect()
    }

    fn rms(coefficients: &[f64], points: &[f64]) -> f64 {
        let p =
            heman_ckks::ChebyshevApproximation::from_coefficients(coefficients.to_vec(), -8.0, 8.0)
                .unwrap();
        let sum: f64 = points
            .iter()
            .map(|&x| (p.evaluate(x) - relu6(x)).powi(2))
            .sum();
        (sum / points.len() as f64).sqrt()
    }

    #[test]
    fn a_fit_is_closer_than_interpolation_where_the_values_are() {
        let points = crowded();
        let fitted = fit(&relu6, (-8.0, 8.0), 31, &points).unwrap();
        let interpolated =
            heman_ckks::ChebyshevApproximation::interpolate(relu6, -8.0, 8.0, 31).unwrap();
        let (a, b) = (
            rms(&fitted, &points),
            rms(interpolated.coefficients(), &points),
        );
        assert!(a < 0.7 * b, "fit {a} against interpolation {b}");
    }

    #[test]
    fn without_points_a_fit_follows_the_whole_interval() {
        let fitted = fit(&relu6, (-8.0, 8.0), 31, &[]).unwrap();
        let grid: Vec<f64> = (0..=160).map(|k| -8.0 + 0.1 * k as f64).collect();
        assert!(rms(&fitted, &grid) < 0.1);
    }
}
