//! Chebyshev approximation (f64) and its homomorphic evaluation: accuracy against the f64
//! Clenshaw evaluation, consumed levels equal to the promised depth, output scale equal to
//! the requested target, and errors (not panics) when the levels do not suffice.

mod common;
use common::*;
use heman_ckks::polynomial::functions::{clip, leaky_relu, relu, sigmoid, silu, tanh};
use heman_ckks::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn uniform(len: usize, a: f64, b: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<f64> = (0..len).map(|_| rng.random_range(a..b)).collect();
    // The interval's ends are where Chebyshev series are most fragile: include them.
    v[0] = a;
    v[1] = b;
    v
}

/// Encrypts uniform values of [a, b] at `level`, evaluates `poly` and checks the result
/// against the f64 Clenshaw evaluation (error <= tol times the output range), the level
/// (input level - depth) and the scale (exactly the target). Returns the elapsed seconds.
fn check_encrypted(
    c: &Ctx,
    pe: &PolynomialEvaluator,
    poly: &ChebyshevApproximation,
    level: usize,
    target_scale: f64,
    tol: f64,
    seed: u64,
) -> f64 {
    let (a, b) = poly.interval();
    let x = uniform(c.params.slots(), a, b, seed);
    let pt = c
        .encoder
        .encode(&x, level, c.params.default_scale())
        .unwrap();
    let ct = c.encryptor.encrypt(&pt).unwrap();
    let start = Instant::now();
    let out = pe.evaluate(&ct, poly, &c.rlk, target_scale).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let d = poly.degree();
    assert_eq!(out.level(), level - poly.depth(), "degree {d}: level");
    assert_eq!(
        pe.output_level(level, poly).unwrap(),
        out.level(),
        "degree {d}"
    );
    assert_eq!(out.scale(), target_scale, "degree {d}: scale");
    let got = c.decrypt(&out);
    let want: Vec<f64> = x.iter().map(|&v| poly.evaluate(v)).collect();
    let (lo, hi) = poly.output_range();
    let range = (hi - lo).max(1e-3);
    let err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "degree {d} on [{a}, {b}] from level {level}: error {:.2e} of the range, {secs:.3} s",
        err / range
    );
    assert!(
        err <= tol * range,
        "degree {d} on [{a}, {b}]: error {err:e} > {tol:e} * range {range}"
    );
    secs
}

#[test]
fn f64_approximation_error_bounds() {
    let sig = ChebyshevApproximation::interpolate(sigmoid, -8.0, 8.0, 31).unwrap();
    assert!(
        sig.max_error(sigmoid, 20001) < 1e-4,
        "{}",
        sig.max_error(sigmoid, 20001)
    );
    let r = ChebyshevApproximation::interpolate(relu, -1.0, 1.0, 63).unwrap();
    assert!(
        r.max_error(relu, 20001) < 0.02,
        "{}",
        r.max_error(relu, 20001)
    );
    // A kink: error ~ (b - a) / d, so quadrupling the degree must gain well over 2x.
    let r15 = ChebyshevApproximation::interpolate(relu, -1.0, 1.0, 15).unwrap();
    assert!(r15.max_error(relu, 20001) > 2.0 * r.max_error(relu, 20001));
    let t = ChebyshevApproximation::interpolate(tanh, -4.0, 4.0, 31).unwrap();
    assert!(
        t.max_error(tanh, 20001) < 1e-5,
        "{}",
        t.max_error(tanh, 20001)
    );
    let lr = leaky_relu(0.1);
    let l = ChebyshevApproximation::interpolate(lr, -2.0, 2.0, 63).unwrap();
    assert!(l.max_error(lr, 20001) < 0.04, "{}", l.max_error(lr, 20001));
    let cl = clip(-1.0, 1.0);
    let p = ChebyshevApproximation::interpolate(cl, -3.0, 3.0, 63).unwrap();
    assert!(p.max_error(cl, 20001) < 0.06, "{}", p.max_error(cl, 20001));
    let s = ChebyshevApproximation::interpolate(silu, -6.0, 6.0, 31).unwrap();
    assert!(
        s.max_error(silu, 20001) < 1e-3,
        "{}",
        s.max_error(silu, 20001)
    );
    // Odd function: the even coefficients are exactly zero (so they cost nothing).
    assert!(t.coefficients().iter().step_by(2).all(|&c| c == 0.0));
}

#[test]
fn fit_to_tolerance_picks_the_smallest_sufficient_depth() {
    let p = ChebyshevApproximation::fit_to_tolerance(sigmoid, -8.0, 8.0, 1e-4, 255).unwrap();
    assert!(p.max_error(sigmoid, 20001) <= 1e-4);
    assert!((p.degree() + 1).is_power_of_two(), "degree {}", p.degree());
    let smaller = ChebyshevApproximation::interpolate(sigmoid, -8.0, 8.0, p.degree() / 2).unwrap();
    assert!(smaller.max_error(sigmoid, 20001) > 1e-4);
    // ReLU needs a high degree; a cap that is too low is an error naming the best error.
    let r = ChebyshevApproximation::fit_to_tolerance(relu, -1.0, 1.0, 0.02, 127).unwrap();
    assert!(r.max_error(relu, 20001) <= 0.02 && r.degree() <= 127);
    let err = ChebyshevApproximation::fit_to_tolerance(relu, -1.0, 1.0, 1e-4, 100).unwrap_err();
    assert!(matches!(err, CkksError::InvalidParameters(_)), "{err}");
}

#[test]
fn depth_is_ceil_log2_plus_change_of_variable() {
    for (d, a, b, depth) in [
        (1usize, -1.0, 1.0, 1usize),
        (2, 0.0, 1.0, 2),
        (7, -1.0, 1.0, 3),
        (8, -1.0, 1.0, 4),
        (15, -8.0, 8.0, 5),
        (31, -8.0, 8.0, 6),
        (63, -1.0, 1.0, 6),
        (0, -3.0, 5.0, 1),
    ] {
        let p = ChebyshevApproximation::interpolate(sigmoid, a, b, d).unwrap();
        assert_eq!(p.depth(), depth, "degree {d} on [{a}, {b}]");
    }
    let p = ChebyshevApproximation::interpolate(tanh, -1.0, 1.0, 63).unwrap();
    assert!(p.ciphertext_multiplications() <= 2 * 8 + 6);
}

#[test]
fn encrypted_low_degrees_at_n8192() {
    // log2(QP) = 40 + 4 * 34 + 40 = 216 <= 218: four levels above q_0.
    let c = setup(13, &[40, 34, 34, 34, 34], &[40], 34);
    let pe = PolynomialEvaluator::new(&c.params);
    let top = c.params.max_level();
    let ds = c.params.default_scale();
    // x^2 on [-2, 2] is its own degree-2 interpolant: check against x^2 itself too.
    let sq = ChebyshevApproximation::interpolate(|x| x * x, -2.0, 2.0, 2).unwrap();
    assert_eq!(sq.depth(), 3);
    check_encrypted(&c, &pe, &sq, top, ds, 1e-4, 1);
    let x = uniform(c.params.slots(), -2.0, 2.0, 2);
    let out = pe.evaluate(&c.encrypt(&x), &sq, &c.rlk, ds).unwrap();
    let want: Vec<f64> = x.iter().map(|v| v * v).collect();
    let bits = precision_bits(&c.decrypt(&out), &want);
    assert!(bits > 13.0, "{bits} bits");
    // [0, 1] has width 2 / 2: the change of variable is free.
    let sq01 = ChebyshevApproximation::interpolate(|x| x * x, 0.0, 1.0, 3).unwrap();
    assert_eq!(sq01.depth(), 2);
    check_encrypted(&c, &pe, &sq01, top, ds, 1e-4, 3);
    let sig7 = ChebyshevApproximation::interpolate(sigmoid, -8.0, 8.0, 7).unwrap();
    check_encrypted(&c, &pe, &sig7, top, ds, 1e-4, 4);
    let tanh15 = ChebyshevApproximation::interpolate(tanh, -1.0, 1.0, 15).unwrap();
    check_encrypted(&c, &pe, &tanh15, top, ds, 1e-4, 5);
    let relu15 = ChebyshevApproximation::interpolate(relu, -1.0, 1.0, 15).unwrap();
    check_encrypted(&c, &pe, &relu15, top, ds, 1e-4, 6);
    // From a lower level, to a scale that is not the default one.
    check_encrypted(&c, &pe, &sq01, top - 1, 2f64.powi(33) * 1.2345, 1e-4, 7);
}

#[test]
fn encrypted_degree_31_at_n8192() {
    // log2(QP) = 36 + 5 * 29 + 36 = 217 <= 218: five levels, exactly the depth of a degree-31
    // series on [-1, 1]; the small 29-bit scale costs precision (about 2^-13 at the end).
    let c = setup(13, &[36, 29, 29, 29, 29, 29], &[36], 29);
    let pe = PolynomialEvaluator::new(&c.params);
    let tanh31 = ChebyshevApproximation::interpolate(|x| tanh(3.0 * x), -1.0, 1.0, 31).unwrap();
    assert_eq!(tanh31.depth(), 5);
    let secs = check_encrypted(&c, &pe, &tanh31, 5, c.params.default_scale(), 1e-3, 41);
    eprintln!("tanh(3x) degree 31 on [-1, 1], N = 2^13, L = 5: {secs:.3} s");
}

#[test]
fn encrypted_degrees_31_and_63_at_n16384() {
    // log2(QP) = 50 + 8 * 40 + 50 = 420 <= 438: eight levels above q_0.
    let c = setup(14, &[50, 40, 40, 40, 40, 40, 40, 40, 40], &[50], 40);
    let pe = PolynomialEvaluator::new(&c.params);
    let top = c.params.max_level();
    let ds = c.params.default_scale();
    let sig31 = ChebyshevApproximation::interpolate(sigmoid, -8.0, 8.0, 31).unwrap();
    let secs = check_encrypted(&c, &pe, &sig31, top, ds, 2e-6, 11);
    eprintln!("sigmoid degree 31 on [-8, 8], N = 2^14, L = 8: {secs:.3} s");
    let relu63 = ChebyshevApproximation::interpolate(relu, -1.0, 1.0, 63).unwrap();
    let secs = check_encrypted(&c, &pe, &relu63, top, ds, 2e-6, 12);
    eprintln!("relu degree 63 on [-1, 1], N = 2^14, L = 8: {secs:.3} s");
    let tanh63 = ChebyshevApproximation::interpolate(tanh, -4.0, 4.0, 63).unwrap();
    assert_eq!(tanh63.depth(), 7);
    let secs = check_encrypted(&c, &pe, &tanh63, top, ds, 2e-6, 13);
    eprintln!("tanh degree 63 on [-4, 4], N = 2^14, L = 8: {secs:.3} s");
    // Exactly enough levels: the output lands on level 0, still decryptable and accurate.
    check_encrypted(&c, &pe, &tanh63, 7, ds, 2e-6, 14);
    // The output composes: it adds to a fresh ciphertext brought to its level without any
    // scale mismatch, since its scale is exactly the default scale.
    let x = uniform(c.params.slots(), -8.0, 8.0, 15);
    let y = pe.evaluate(&c.encrypt(&x), &sig31, &c.rlk, ds).unwrap();
    let z = c.eval.drop_to_level(&c.encrypt(&x), y.level()).unwrap();
    let sum = c.eval.add(&y, &z).unwrap();
    let want: Vec<f64> = x.iter().map(|&v| sig31.evaluate(v) + v).collect();
    assert!(precision_bits(&c.decrypt(&sum), &want) > 16.0);
}

#[test]
fn insufficient_levels_are_errors_not_panics() {
    let c = setup(13, &[40, 34, 34, 34, 34], &[40], 34);
    let pe = PolynomialEvaluator::new(&c.params);
    let x = uniform(c.params.slots(), -8.0, 8.0, 21);
    let ct = c.encrypt(&x);
    let ds = c.params.default_scale();
    // Degree 15 on [-8, 8] needs 5 levels; the chain has 4.
    let p15 = ChebyshevApproximation::interpolate(sigmoid, -8.0, 8.0, 15).unwrap();
    assert!(pe.output_level(ct.level(), &p15).is_err());
    let err = pe.evaluate(&ct, &p15, &c.rlk, ds).unwrap_err();
    assert!(matches!(err, CkksError::InvalidParameters(_)), "{err}");
    // Degree 7 on [-8, 8] needs 4: fine at level 4, an error at level 3.
    let p7 = ChebyshevApproximation::interpolate(sigmoid, -8.0, 8.0, 7).unwrap();
    let low = c.eval.drop_level(&ct, 1).unwrap();
    assert!(pe.evaluate(&ct, &p7, &c.rlk, ds).is_ok());
    assert!(pe.evaluate(&low, &p7, &c.rlk, ds).is_err());
    // Nonsense target scales and degree-2 inputs are errors too.
    assert!(pe.evaluate(&ct, &p7, &c.rlk, f64::NAN).is_err());
    assert!(pe.evaluate(&ct, &p7, &c.rlk, 0.0).is_err());
    let deg2 = c.eval.mul(&ct, &ct).unwrap();
    assert!(matches!(
        pe.evaluate(&deg2, &p7, &c.rlk, ds),
        Err(CkksError::InvalidDegree(2))
    ));
}

#[test]
fn constant_and_linear_series() {
    let c = setup(13, &[40, 34, 34, 34, 34], &[40], 34);
    let pe = PolynomialEvaluator::new(&c.params);
    let ds = c.params.default_scale();
    let x = uniform(c.params.slots(), -3.0, 5.0, 31);
    let ct = c.encrypt(&x);
    // Degree 0 on a non-standard interval: a constant at level top - 1.
    let k = ChebyshevApproximation::from_coefficients(vec![2.5], -3.0, 5.0).unwrap();
    let out = pe.evaluate(&ct, &k, &c.rlk, ds).unwrap();
    assert_eq!((out.level(), out.scale()), (ct.level() - 1, ds));
    assert!(c.decrypt(&out).iter().all(|v| (v - 2.5).abs() < 1e-6));
    // Degree 1: 3 T_1(y) - 1 = 3 (x - 1) / 4 - 1 on [-3, 5].
    let lin = ChebyshevApproximation::from_coefficients(vec![-1.0, 3.0], -3.0, 5.0).unwrap();
    let out = pe.evaluate(&ct, &lin, &c.rlk, ds).unwrap();
    assert_eq!(out.level(), ct.level() - 2);
    let want: Vec<f64> = x.iter().map(|v| 3.0 * (v - 1.0) / 4.0 - 1.0).collect();
    let bits = precision_bits(&c.decrypt(&out), &want);
    assert!(bits > 15.0, "{bits} bits");
}
