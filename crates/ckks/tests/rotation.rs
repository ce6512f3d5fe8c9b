//! Rotations by every step of a key set (negative included), conjugation, hoisting.

mod common;
use common::*;
use heman_ckks::*;

fn rotated(x: &[f64], step: i64) -> Vec<f64> {
    let n = x.len() as i64;
    (0..n)
        .map(|j| x[(j + step).rem_euclid(n) as usize])
        .collect()
}

#[test]
fn rotation_by_every_key_step_including_negative() {
    let mut c = setup(13, &[50, 40, 40], &[50], 40);
    let steps: Vec<i64> = vec![1, 2, 3, 7, 16, 100, 1024, 4095, -1, -5, -64, -4095];
    let gk = c.kg.gen_galois_keys(&c.sk, &steps, true).unwrap();
    let x = random_vec(c.params.slots(), 5.0, 21);
    for level in [2usize, 1] {
        let ct = c.eval.drop_to_level(&c.encrypt(&x), level).unwrap();
        for &s in &steps {
            let r = c.eval.rotate(&ct, s, &gk).unwrap();
            let bits = precision_bits(&c.decrypt(&r), &rotated(&x, s));
            assert!(bits >= 20.0, "step {s} level {level}: {bits} bits");
        }
    }
    // Rotation by 0 or a multiple of the slot count is the identity, no key needed.
    let ct = c.encrypt(&x);
    let r = c.eval.rotate(&ct, 0, &gk).unwrap();
    assert!(precision_bits(&c.decrypt(&r), &x) >= 20.0);
    // A step without a key is reported.
    assert!(matches!(
        c.eval.rotate(&ct, 5, &gk),
        Err(CkksError::MissingGaloisKey { step: Some(5), .. })
    ));
}

#[test]
fn hoisted_rotations_equal_plain_rotations() {
    let mut c = setup(13, &[50, 40, 40, 40], &[48], 40);
    let steps: Vec<i64> = (0..16).map(|i| i * 3 - 20).collect();
    let gk = c.kg.gen_galois_keys(&c.sk, &steps, false).unwrap();
    let x = random_vec(c.params.slots(), 5.0, 22);
    let ct = c.encrypt(&x);
    let hoisted = c.eval.rotate_hoisted(&ct, &steps, &gk).unwrap();
    assert_eq!(hoisted.len(), steps.len());
    for (&s, h) in steps.iter().zip(&hoisted) {
        let plain = c.eval.rotate(&ct, s, &gk).unwrap();
        let (dh, dp) = (c.decrypt(h), c.decrypt(&plain));
        let want = rotated(&x, s);
        assert!(precision_bits(&dh, &want) >= 20.0, "hoisted step {s}");
        // Both paths compute the same key switch up to rounding noise.
        assert!(
            precision_bits(&dh, &dp) >= 20.0,
            "hoisted vs plain step {s}"
        );
    }
}

#[test]
fn hoisted_rotations_with_several_digit_groups() {
    // Two special primes: dnum = 2 groups of 2 primes (hybrid key switching with dnum > 1,
    // alpha > 1) at N = 2^14.
    let mut c = setup(14, &[50, 40, 40, 40], &[50, 50], 40);
    assert_eq!(c.params.dnum(), 2);
    let steps = [1i64, -1, 8, 33];
    let gk = c.kg.gen_galois_keys(&c.sk, &steps, false).unwrap();
    let x = random_vec(c.params.slots(), 1.0, 23);
    for level in [3usize, 2, 0] {
        let ct = c.eval.drop_to_level(&c.encrypt(&x), level).unwrap();
        for (&s, r) in steps
            .iter()
            .zip(c.eval.rotate_hoisted(&ct, &steps, &gk).unwrap())
        {
            let bits = precision_bits(&c.decrypt(&r), &rotated(&x, s));
            // Fresh public-key noise at N = 2^14 alone costs about 21 bits at scale 2^40.
            assert!(bits >= 18.0, "level {level} step {s}: {bits}");
        }
        if level == 0 {
            // A product at scale 2^80 does not fit the 50-bit q_0: nothing to check there.
            continue;
        }
        let y = random_vec(c.params.slots(), 1.0, 24);
        let cy = c.eval.drop_to_level(&c.encrypt(&y), level).unwrap();
        let m = c.eval.mul_relin(&ct, &cy, &c.rlk).unwrap();
        let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
        let bits = precision_bits(&c.decrypt(&m), &want);
        assert!(bits >= 18.0, "relin level {level}: {bits}");
    }
}

#[test]
fn conjugation_conjugates_complex_slots() {
    let mut c = setup(12, &[38, 32], &[38], 32);
    let gk = c.kg.gen_galois_keys(&c.sk, &[], true).unwrap();
    let x = random_complex(c.params.slots(), 2.0, 25);
    let pt = c
        .encoder
        .encode_complex(&x, 1, c.params.default_scale())
        .unwrap();
    let ct = c.encryptor.encrypt(&pt).unwrap();
    let r = c.eval.conjugate(&ct, &gk).unwrap();
    let y = c.encoder.decode_complex(&c.decryptor.decrypt(&r).unwrap());
    let want: Vec<Complex64> = x.iter().map(|z| z.conj()).collect();
    let bits = precision_bits_complex(&y, &want);
    assert!(bits >= 12.0, "{bits}");
}

#[test]
fn rotation_composes_with_multiplication() {
    let mut c = setup(13, &[50, 40, 40], &[50], 40);
    let gk = c.kg.gen_galois_keys(&c.sk, &[1, 2, 4], false).unwrap();
    let x = random_vec(c.params.slots(), 1.0, 26);
    let ct = c.encrypt(&x);
    // Sum of 8 neighbouring slots by log-steps, then square.
    let mut acc = ct.clone();
    for s in [1i64, 2, 4] {
        let r = c.eval.rotate(&acc, s, &gk).unwrap();
        acc = c.eval.add(&acc, &r).unwrap();
    }
    let sq = c
        .eval
        .rescale(&c.eval.square_relin(&acc, &c.rlk).unwrap())
        .unwrap();
    let n = x.len();
    let want: Vec<f64> = (0..n)
        .map(|j| {
            let s: f64 = (0..8).map(|k| x[(j + k) % n]).sum();
            s * s
        })
        .collect();
    let bits = precision_bits(&c.decrypt(&sq), &want);
    assert!(bits >= 14.0, "{bits}");
}

#[test]
fn decomposition_can_be_reused_across_calls() {
    let mut c = setup(12, &[38, 32], &[38], 32);
    let gk = c.kg.gen_galois_keys(&c.sk, &[1, 5], false).unwrap();
    let x = random_vec(c.params.slots(), 1.0, 27);
    let ct = c.encrypt(&x);
    let dec = c.eval.decompose_for_rotation(&ct).unwrap();
    for s in [1i64, 5, 0] {
        let r = c.eval.rotate_decomposed(&ct, &dec, s, &gk).unwrap();
        let bits = precision_bits(&c.decrypt(&r), &rotated(&x, s));
        assert!(bits >= 12.0, "step {s}: {bits}");
    }
    let low = c.eval.drop_level(&ct, 1).unwrap();
    assert!(matches!(
        c.eval.rotate_decomposed(&low, &dec, 1, &gk),
        Err(CkksError::LevelMismatch(..))
    ));
}
