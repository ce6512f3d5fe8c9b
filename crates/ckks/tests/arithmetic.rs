//! Encryption, decryption and every arithmetic operation against f64 references.

mod common;
use common::*;
use heman_ckks::*;

#[test]
fn encode_decode_roundtrip_at_every_level() {
    let c = setup(13, &[50, 40, 40], &[50], 40);
    let x = random_complex(c.params.slots(), 10.0, 1);
    for level in 0..=c.params.max_level() {
        let pt = c
            .encoder
            .encode_complex(&x, level, c.params.default_scale())
            .unwrap();
        let y = c.encoder.decode_complex(&pt);
        let bits = precision_bits_complex(&y, &x);
        assert!(bits > 30.0, "level {level}: {bits} bits");
    }
}

#[test]
fn public_and_secret_key_encryption_roundtrip() {
    for (log_n, q, p, scale) in [
        (12u32, &[38u32, 32][..], 38u32, 32u32),
        (13, &[50, 40, 40], 50, 40),
    ] {
        let c = setup(log_n, q, &[p], scale);
        let x = random_vec(c.params.slots(), 100.0, 2);
        let ct = c.encrypt(&x);
        let bits = precision_bits(&c.decrypt(&ct), &x);
        assert!(bits >= scale as f64 - 20.0, "pk, N=2^{log_n}: {bits} bits");
        let pt = c.encoder.encode(&x, 1, c.params.default_scale()).unwrap();
        let ct = c.decryptor.encrypt_symmetric(&pt).unwrap();
        assert!(ct.is_seeded());
        let bits = precision_bits(&c.decrypt(&ct), &x);
        assert!(bits >= scale as f64 - 20.0, "sk, N=2^{log_n}: {bits} bits");
    }
}

#[test]
fn complex_slots_survive_encryption() {
    let c = setup(12, &[38, 32], &[38], 32);
    let x = random_complex(c.params.slots(), 4.0, 3);
    let pt = c
        .encoder
        .encode_complex(&x, 1, c.params.default_scale())
        .unwrap();
    let ct = c.encryptor.encrypt(&pt).unwrap();
    let y = c.encoder.decode_complex(&c.decryptor.decrypt(&ct).unwrap());
    let bits = precision_bits_complex(&y, &x);
    assert!(bits >= 12.0, "{bits}");
}

#[test]
fn add_sub_neg_and_plain_ops() {
    let c = setup(13, &[50, 40, 40], &[50], 40);
    let n = c.params.slots();
    let (x, y) = (random_vec(n, 10.0, 4), random_vec(n, 10.0, 5));
    let (cx, cy) = (c.encrypt(&x), c.encrypt(&y));
    let e = &c.eval;
    let sum: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
    let diff: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
    let neg: Vec<f64> = x.iter().map(|a| -a).collect();
    assert!(precision_bits(&c.decrypt(&e.add(&cx, &cy).unwrap()), &sum) >= 20.0);
    assert!(precision_bits(&c.decrypt(&e.sub(&cx, &cy).unwrap()), &diff) >= 20.0);
    assert!(precision_bits(&c.decrypt(&e.neg(&cx)), &neg) >= 20.0);
    let py = c
        .encoder
        .encode(&y, c.params.max_level(), c.params.default_scale())
        .unwrap();
    assert!(precision_bits(&c.decrypt(&e.add_plain(&cx, &py).unwrap()), &sum) >= 20.0);
    assert!(precision_bits(&c.decrypt(&e.sub_plain(&cx, &py).unwrap()), &diff) >= 20.0);
    let shifted: Vec<f64> = x.iter().map(|a| a + 2.5).collect();
    assert!(precision_bits(&c.decrypt(&e.add_const(&cx, 2.5).unwrap()), &shifted) >= 20.0);
    let tripled: Vec<f64> = x.iter().map(|a| -3.0 * a).collect();
    let t = e.mul_integer(&cx, -3);
    assert_eq!(t.scale(), cx.scale());
    assert!(precision_bits(&c.decrypt(&t), &tripled) >= 20.0);
}

#[test]
fn plaintext_and_constant_multiplication_with_rescale() {
    let c = setup(13, &[50, 40, 40, 40], &[48], 40);
    let n = c.params.slots();
    let (x, y) = (random_vec(n, 4.0, 6), random_vec(n, 4.0, 7));
    let cx = c.encrypt(&x);
    let e = &c.eval;
    let prod: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let py = c
        .encoder
        .encode(&y, c.params.max_level(), c.params.default_scale())
        .unwrap();
    let r = e.rescale(&e.mul_plain(&cx, &py).unwrap()).unwrap();
    assert_eq!(r.level(), c.params.max_level() - 1);
    let bits = precision_bits(&c.decrypt(&r), &prod);
    assert!(bits >= 20.0, "ct-pt: {bits}");
    let q_last = c.params.q()[cx.level()] as f64;
    let r = e
        .rescale(&e.mul_const(&cx, 0.4321, q_last).unwrap())
        .unwrap();
    assert!(((r.scale() - cx.scale()) / cx.scale()).abs() < 1e-12);
    let want: Vec<f64> = x.iter().map(|a| a * 0.4321).collect();
    let bits = precision_bits(&c.decrypt(&r), &want);
    assert!(bits >= 20.0, "const: {bits}");
}

#[test]
fn ciphertext_multiplication_precision_at_every_level() {
    let configs: [(u32, Vec<u32>, Vec<u32>); 2] = [
        (13, vec![50, 40, 40, 40], vec![48]),
        (14, vec![50, 40, 40, 40, 40, 40, 40, 40], vec![50, 50]),
    ];
    for (log_n, q, p) in configs {
        let c = setup(log_n, &q, &p, 40);
        let n = c.params.slots();
        let x = random_vec(n, 1.0, 8);
        let y = random_vec(n, 1.0, 9);
        let mut cx = c.encrypt(&x);
        let cy = c.encrypt(&y);
        let mut want = x.clone();
        // Repeated multiplication by y, one rescale per level, down to level 0.
        while cx.level() > 0 {
            let cyl = c.eval.drop_to_level(&cy, cx.level()).unwrap();
            let mut cyl = cyl;
            cyl.set_scale(cx.scale());
            let m = c.eval.mul_relin(&cx, &cyl, &c.rlk).unwrap();
            assert_eq!(m.degree(), 1);
            cx = c.eval.rescale(&m).unwrap();
            // y was encrypted at the default scale; re-labelling cyl's scale to cx's scale
            // multiplies its message by default/cx.scale.
            let factor = c.params.default_scale() / cyl.scale();
            want = want.iter().zip(&y).map(|(a, b)| a * b * factor).collect();
            let bits = precision_bits(&c.decrypt(&cx), &want);
            // Fresh public-key noise alone is about 2^-23 at N = 2^13 and 2^-21.5 at
            // N = 2^14 (max over all slots); seven levels of products add about a bit.
            let floor = if log_n == 13 { 20.0 } else { 18.5 };
            assert!(
                bits >= floor,
                "N=2^{log_n}, level {}: {bits} bits",
                cx.level()
            );
        }
        assert_eq!(c.eval.rescale(&cx), Err(CkksError::RescaleAtLevelZero));
    }
}

#[test]
fn square_then_rescale_keeps_20_bits_at_scale_2_40() {
    let c = setup(13, &[50, 40, 40], &[50], 40);
    let x = random_vec(c.params.slots(), 1.0, 10);
    let ct = c.encrypt(&x);
    let sq = c
        .eval
        .rescale(&c.eval.square_relin(&ct, &c.rlk).unwrap())
        .unwrap();
    let want: Vec<f64> = x.iter().map(|a| a * a).collect();
    let bits = precision_bits(&c.decrypt(&sq), &want);
    assert!(bits >= 20.0, "{bits} bits");
}

#[test]
fn degree_two_decrypts_and_relinearises() {
    let c = setup(13, &[50, 40], &[50], 40);
    let x = random_vec(c.params.slots(), 2.0, 11);
    let ct = c.encrypt(&x);
    let t = c.eval.mul(&ct, &ct).unwrap();
    assert_eq!(t.degree(), 2);
    let want: Vec<f64> = x.iter().map(|a| a * a).collect();
    let bits = precision_bits(&c.decrypt(&t), &want);
    assert!(bits >= 20.0, "degree 2 before rescale: {bits}");
    let direct = c.eval.rescale(&t).unwrap();
    let bits = precision_bits(&c.decrypt(&direct), &want);
    assert!(bits >= 18.0, "degree 2 after rescale: {bits}");
    assert!(c.eval.mul(&t, &ct).is_err());
}

#[test]
fn mismatched_scales_and_levels_are_reported() {
    let c = setup(13, &[50, 40, 40], &[50], 40);
    let x = random_vec(8, 1.0, 12);
    let a = c.encrypt(&x);
    let pt = c.encoder.encode(&x, 2, 2f64.powi(30)).unwrap();
    let b = c.encryptor.encrypt(&pt).unwrap();
    assert!(matches!(
        c.eval.add(&a, &b),
        Err(CkksError::ScaleMismatch(..))
    ));
    let low = c.encoder.encode(&x, 0, c.params.default_scale()).unwrap();
    assert!(matches!(
        c.eval.mul_plain(&a, &low),
        Err(CkksError::LevelMismatch(..))
    ));
    // Different levels are aligned down.
    let d = c.eval.drop_level(&a, 1).unwrap();
    let s = c.eval.add(&a, &d).unwrap();
    assert_eq!(s.level(), 1);
    let want: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
    assert!(precision_bits(&c.decrypt(&s)[..8], &want) >= 20.0);
    assert!(c
        .encoder
        .encode(&vec![0.0; c.params.slots() + 1], 0, 1e6)
        .is_err());
    assert!(c.encoder.encode(&[f64::NAN], 0, 1e6).is_err());
    assert!(c.encoder.encode(&[1e30], 0, 2f64.powi(40)).is_err());
}

/// A sparse secret only where a published estimate covers it (weight 192 at
/// N = 2^16), and it works there.
#[test]
fn hamming_weight_secret_works_where_its_security_is_published() {
    for (log_n, h) in [(12, 64), (16, 64), (12, 192)] {
        let refused = CkksParameters::with_secret(
            log_n,
            &[38, 32],
            &[38],
            32,
            SecretDistribution::HammingWeight(h),
        );
        assert!(
            matches!(refused, Err(CkksError::InvalidParameters(ref m)) if m.contains("published")),
            "weight {h} at 2^{log_n}: {refused:?}"
        );
    }
    let params = CkksParameters::with_secret(
        16,
        &[38, 32],
        &[38],
        32,
        SecretDistribution::HammingWeight(192),
    )
    .unwrap();
    let mut kg = KeyGenerator::new(&params).unwrap();
    let sk = kg.gen_secret_key();
    let pk = kg.gen_public_key(&sk).unwrap();
    let enc = Encoder::new(&params);
    let ct = Encryptor::new(&params, &pk)
        .unwrap()
        .encrypt(&enc.encode(&[1.0, 2.0], 1, params.default_scale()).unwrap())
        .unwrap();
    let out = enc.decode(&Decryptor::new(&params, &sk).unwrap().decrypt(&ct).unwrap());
    // Public-key noise at N = 2^16 and a 2^32 scale: about 2^-12 per slot.
    assert!(
        (out[0] - 1.0).abs() < 1e-3 && (out[1] - 2.0).abs() < 1e-3,
        "{:?}",
        &out[..2]
    );
}

#[test]
fn rerandomisation_keeps_the_message_and_changes_every_coefficient() {
    let c = setup(13, &[50, 40, 40], &[50], 40);
    let x = random_vec(c.params.slots(), 1.0, 13);
    let ct = c
        .eval
        .rescale(&c.eval.square_relin(&c.encrypt(&x), &c.rlk).unwrap())
        .unwrap();
    let r = c
        .encryptor
        .rerandomise(&ct, &Flooding::uniform(2f64.powi(20)))
        .unwrap();
    assert_eq!(r.level(), ct.level());
    assert_eq!(r.scale(), ct.scale());
    // Fresh randomness in both components.
    let same = r.parts()[1]
        .data()
        .iter()
        .zip(ct.parts()[1].data())
        .filter(|(a, b)| a == b)
        .count();
    assert!(same < 16, "{same} coefficients unchanged");
    let want: Vec<f64> = x.iter().map(|v| v * v).collect();
    // 2^20 flooding noise at scale 2^40 leaves about 20 - log2(N) - a few bits.
    let bits = precision_bits(&c.decrypt(&r), &want);
    assert!(bits >= 5.0, "{bits}");
    assert!(
        bits < precision_bits(&c.decrypt(&ct), &want),
        "flooding added no noise"
    );
    assert!(c
        .encryptor
        .rerandomise(&ct, &Flooding::uniform(2f64.powi(51)))
        .is_err());
    // The coefficient-domain noise: small before, about 4-5 sigma (the largest of N
    // Gaussian samples) after flooding.
    let before = c
        .encoder
        .coefficient_noise(&c.decryptor.decrypt(&ct).unwrap(), &want);
    let after = c
        .encoder
        .coefficient_noise(&c.decryptor.decrypt(&r).unwrap(), &want);
    assert!(
        before < 2f64.powi(12),
        "noise before flooding 2^{:.1}",
        before.log2()
    );
    assert!(
        (3.0 * 2f64.powi(20)..6.0 * 2f64.powi(20)).contains(&after),
        "noise after flooding 2^{:.1}",
        after.log2()
    );
}

/// Flooding on a subring: the wide deviation lands on the coefficients at
/// multiples of the stride only, the narrow one on the rest; a stride that
/// does not divide N is refused.
#[test]
fn subring_flooding_floods_each_class_at_its_own_deviation() {
    let c = setup(13, &[50, 40], &[50], 40);
    let x = random_vec(c.params.slots(), 1.0, 17);
    let ct = c.encrypt(&x);
    let flooding = Flooding {
        sigma: 2f64.powi(24),
        stride: 8,
        off_stride_sigma: 2f64.powi(12),
    };
    let r = c.encryptor.rerandomise(&ct, &flooding).unwrap();
    let errors = c
        .encoder
        .coefficient_errors(&c.decryptor.decrypt(&r).unwrap(), &x);
    let deviation = |on: bool| {
        let class: Vec<f64> = errors
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 8 == 0) == on)
            .map(|(_, e)| *e)
            .collect();
        (class.iter().map(|e| e * e).sum::<f64>() / class.len() as f64).sqrt()
    };
    let (on, off) = (deviation(true), deviation(false));
    assert!(
        (on / 2f64.powi(24) - 1.0).abs() < 0.1,
        "on the subring 2^{:.2}",
        on.log2()
    );
    assert!(
        (off / 2f64.powi(12) - 1.0).abs() < 0.1,
        "off the subring 2^{:.2}",
        off.log2()
    );
    let odd = Flooding {
        stride: 3,
        ..flooding
    };
    assert!(c.encryptor.rerandomise(&ct, &odd).is_err());
}
