//! The HomomorphicEncryption.org 128-bit table is enforced for every ring degree.

use heman_ckks::params::{max_log_qp, MAX_LOG_QP_128};
use heman_ckks::*;

/// Splits a bit budget into at least two prime sizes of at most 50 bits.
fn split(budget: u32) -> Vec<u32> {
    let k = budget.div_ceil(50).max(2);
    vec![budget / k; k as usize]
}

#[test]
fn largest_sets_inside_the_table_are_accepted_for_every_degree() {
    for &(log_n, max_bits) in &MAX_LOG_QP_128 {
        if log_n == 10 {
            continue; // see n_1024_has_no_secure_set
        }
        let bits = split(max_bits);
        let (q, p) = bits.split_at(bits.len() - 1);
        let params =
            CkksParameters::new(log_n, q, p, 20).unwrap_or_else(|e| panic!("2^{log_n}: {e}"));
        assert!(params.log_qp() <= max_bits as f64);
        assert!(params.log_qp() > max_bits as f64 - bits.len() as f64 - 1.0);
        assert_eq!(params.n(), 1 << log_n);
        for &x in params.q().iter().chain(params.p()) {
            assert_eq!(x % (2 << log_n), 1);
            assert!(x < 1 << 50);
        }
    }
}

#[test]
fn sets_beyond_the_table_are_refused_for_every_degree() {
    for &(log_n, max_bits) in &MAX_LOG_QP_128 {
        let mut q: Vec<u32> = split(max_bits).iter().map(|&b| b.max(20)).collect();
        q.push(30);
        let err = CkksParameters::new(log_n, &q, &[30], 20).unwrap_err();
        match err {
            CkksError::InsecureParameters {
                max_bits: m,
                log_qp,
                ..
            } => {
                assert_eq!(m, max_bits);
                assert!(log_qp > max_bits as f64);
            }
            e => panic!("2^{log_n}: unexpected {e}"),
        }
        assert!(err.to_string().contains("128-bit"));
    }
    // Explicit primes are checked against the table as well.
    let ok = CkksParameters::new(12, &[36, 36], &[36], 30).unwrap();
    let mut q = ok.q().to_vec();
    q.extend(CkksParameters::new(12, &[37], &[36], 30).unwrap().q());
    assert!(matches!(
        CkksParameters::from_primes(12, &q, ok.p(), 30, SecretDistribution::UniformTernary),
        Err(CkksError::InsecureParameters { .. })
    ));
}

#[test]
fn n_1024_has_no_secure_set() {
    // 27 bits cannot hold a ciphertext prime and a special prime of >= 20 bits each.
    assert_eq!(max_log_qp(10), Some(27));
    assert!(matches!(
        CkksParameters::new(10, &[20], &[20], 15),
        Err(CkksError::InsecureParameters { .. })
    ));
}

#[test]
fn unsupported_degrees_and_prime_sizes_refused() {
    assert_eq!(
        CkksParameters::new(9, &[20], &[20], 15).unwrap_err(),
        CkksError::UnsupportedDegree { log_n: 9 }
    );
    assert_eq!(
        CkksParameters::new(17, &[40], &[40], 30).unwrap_err(),
        CkksError::UnsupportedDegree { log_n: 17 }
    );
    assert!(matches!(
        CkksParameters::new(13, &[62, 40], &[40], 40),
        Err(CkksError::InvalidParameters(_))
    ));
    // Up to 61 bits are accepted (the 64-bit paths).
    assert!(CkksParameters::new(13, &[60, 40], &[61], 40).is_ok());
    assert!(matches!(
        CkksParameters::new(13, &[40], &[], 30),
        Err(CkksError::InvalidParameters(_))
    ));
    // A prime that is not 1 mod 2N is refused.
    assert!(CkksParameters::from_primes(
        12,
        &[1_099_511_627_791],
        &[1_099_511_627_689],
        30,
        SecretDistribution::UniformTernary
    )
    .is_err());
}

#[test]
fn prime_generation_is_deterministic_and_fingerprints_differ() {
    let a = CkksParameters::new(13, &[50, 40, 40], &[50], 40).unwrap();
    let b = CkksParameters::new(13, &[50, 40, 40], &[50], 40).unwrap();
    assert_eq!(a.q(), b.q());
    assert_eq!(a.fingerprint(), b.fingerprint());
    // Distinct primes, close to (below) 2^bits.
    assert_ne!(a.q()[1], a.q()[2]);
    assert_ne!(a.q()[0], a.p()[0]);
    for &q in &a.q()[1..] {
        assert!(q < 1 << 40 && q > (1 << 40) - (1 << 30));
    }
    let c = CkksParameters::new(13, &[50, 40, 40], &[50], 39).unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
    assert_eq!(a.dnum(), 3);
    assert_eq!(a.alpha(), 1);
    // Scale per level: s_L = 2^40, s_{l-1} = s_l^2 / q_l.
    let s2 = a.scale_at_level(2);
    assert_eq!(s2, 2f64.powi(40));
    assert!((a.scale_at_level(1) - s2 * s2 / a.q()[2] as f64).abs() < 1e-3);
}

#[test]
fn digit_size_is_a_choice_recorded_in_fingerprint_and_bytes() {
    let a = CkksParameters::new(14, &[50, 40, 40, 40, 40], &[50, 50, 50], 40).unwrap();
    assert_eq!((a.alpha(), a.dnum()), (3, 2));
    let same = a.with_digit_size(3).unwrap();
    assert_eq!(same.fingerprint(), a.fingerprint());
    let b = a.with_digit_size(2).unwrap();
    assert_eq!((b.alpha(), b.dnum()), (2, 3));
    assert_ne!(b.fingerprint(), a.fingerprint());
    let back = CkksParameters::from_bytes(&b.to_bytes()).unwrap();
    assert_eq!((back.alpha(), back.fingerprint()), (2, b.fingerprint()));
    // The default's bytes are those of before the choice existed: no trailing field.
    assert_eq!(a.to_bytes().len() + 4, b.to_bytes().len());
    assert!(a.with_digit_size(0).is_err() && a.with_digit_size(6).is_err());
    // Keys and key switching follow the digits.
    let mut kg = KeyGenerator::new(&b).unwrap();
    let sk = kg.gen_secret_key();
    let rlk = kg.gen_relin_key(&sk).unwrap();
    let enc = Encoder::new(&b);
    let ct = Encryptor::new(&b, &kg.gen_public_key(&sk).unwrap())
        .unwrap()
        .encrypt(&enc.encode(&[1.5, -0.5], 4, b.default_scale()).unwrap())
        .unwrap();
    let eval = Evaluator::new(&b);
    let sq = eval
        .rescale(&eval.mul_relin(&ct, &ct, &rlk).unwrap())
        .unwrap();
    let out = enc.decode(&Decryptor::new(&b, &sk).unwrap().decrypt(&sq).unwrap());
    assert!((out[0] - 2.25).abs() < 1e-6 && (out[1] - 0.25).abs() < 1e-6);
}
