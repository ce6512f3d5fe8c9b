//! Bootstrapping's correctness at N = 2^11 (parameters outside the security tables, which
//! only small rings keep fast; the circuit does not depend on N).

use super::*;
use crate::encryption::Decryptor;
use crate::keys::KeyGenerator;
use crate::params::SecretDistribution;
use crate::precision::PrecisionStats;

/// Message scale of the inputs: 2^-10 of q_0 (the default message ratio).
const INPUT_SCALE: f64 = (1u64 << 50) as f64;

/// q_0 of 60 bits, 16 levels of 60 bits for the circuit and two of 50 for computing; digits
/// of two primes under three special primes of 61 bits.
fn params(secret: SecretDistribution) -> CkksParameters {
    let mut q = vec![60u32, 50, 50];
    q.extend([60; 16]);
    CkksParameters::insecure_for_tests(11, &q, &[61, 61, 61], 50, secret)
        .unwrap()
        .with_digit_size(2)
        .unwrap()
}

fn sample(n: usize, seed: u64) -> Vec<Complex64> {
    (0..n)
        .map(|i| {
            let t = (i as f64 + 1.0) * (seed as f64 + 0.37);
            Complex64::new(t.sin() * 0.9, (1.7 * t).cos() * 0.5)
        })
        .collect()
}

/// The circuit `shape` under `params`, a fresh secret key's bootstrapping keys, an encoder
/// and the secret key's decryptor.
fn keyed(
    params: &CkksParameters,
    shape: BootstrappingParameters,
) -> (Bootstrapper, BootstrappingKeys, Encoder, Decryptor) {
    let bt = Bootstrapper::new(params, shape).unwrap();
    let mut kg = KeyGenerator::new(params).unwrap();
    let sk = kg.gen_secret_key();
    let keys = kg.gen_bootstrapping_keys(&sk, &bt).unwrap();
    (
        bt,
        keys,
        Encoder::new(params),
        Decryptor::new(params, &sk).unwrap(),
    )
}

/// Encrypts `values` (replicated over the slots when fewer) at level 0, bootstraps and
/// returns the precision of the decrypted slots.
fn run(shape: BootstrappingParameters, secret: SecretDistribution) -> (PrecisionStats, usize) {
    let params = params(secret);
    let (bt, keys, enc, dec) = keyed(&params, shape);
    let n = shape.slots();
    let values = sample(n, 3);
    let pt = enc.encode_periodic(&values, 0, INPUT_SCALE).unwrap();
    let ct = dec.encrypt_symmetric(&pt).unwrap();
    let out = bt.bootstrap(&ct, &keys).unwrap();
    assert_eq!(out.level(), bt.output_level());
    assert_eq!(out.scale(), ct.scale());
    let got = enc.decode_complex(&dec.decrypt(&out).unwrap());
    (
        PrecisionStats::new(&enc.replicated(&values), &got),
        out.level(),
    )
}

#[test]
fn eval_mod_removes_the_multiples_of_q0() {
    let plain = BootstrappingParameters {
        arcsine_degree: 0,
        ..BootstrappingParameters::new(10)
    };
    let em = EvalMod::new(&plain).unwrap();
    for i in -100..=100 {
        let y = i as f64 / 100.0;
        let want = (2.0 * PI * plain.k as f64 * y).sin();
        assert!((em.reference(y) - want).abs() < 1e-6, "{y}");
    }
    // With the arcsine, x = I + m / q_0 gives 2 pi m / q_0 (times the gain) to far better
    // than the sine's curvature, (2 pi 2^-10)^2 / 6 ~ 2^-17 of a full-scale message.
    let shape = BootstrappingParameters::new(10);
    let em = EvalMod::new(&shape).unwrap();
    let k = shape.k as f64;
    let full_scale = 2.0 * PI * 2f64.powi(-(shape.log_message_ratio as i32));
    for i in [-15, -3, 0, 2, 14] {
        for m in [-1.0, -0.3, 0.001, 0.7, 1.0] {
            let x = i as f64 + m * 2f64.powi(-(shape.log_message_ratio as i32));
            let want = 2.0 * PI * (x - i as f64);
            let error = (em.reference(x / k) / em.gain() - want).abs() / full_scale;
            let plain_error = ((2.0 * PI * x).sin() - want).abs() / full_scale;
            assert!(error < 2f64.powi(-28), "{x}: {error:e}");
            if m.abs() >= 0.3 {
                assert!(
                    error < plain_error / 50.0,
                    "{x}: {error:e} vs {plain_error:e}"
                );
            }
        }
    }
}

/// Without encapsulation, under a secret of weight 32 itself.
fn unencapsulated(log_slots: u32) -> BootstrappingParameters {
    BootstrappingParameters {
        ephemeral_weight: None,
        ..BootstrappingParameters::new(log_slots)
    }
}

#[test]
fn bootstraps_full_slots_under_a_sparse_secret() {
    let (stats, level) = run(unencapsulated(10), SecretDistribution::HammingWeight(32));
    eprintln!("full slots, output level {level}\n{stats}");
    // Measured: 29.2 bits in the worst slot.
    assert!(stats.l2.min > 27.0, "{stats}");
}

#[test]
fn bootstraps_sparse_slots_under_a_sparse_secret() {
    let (stats, level) = run(unencapsulated(4), SecretDistribution::HammingWeight(32));
    eprintln!("16 slots, output level {level}\n{stats}");
    // Measured: 32.0 bits in the worst slot.
    assert!(stats.l2.min > 29.5, "{stats}");
}

#[test]
fn encapsulation_bootstraps_under_a_ternary_secret() {
    for log_slots in [10, 9, 4] {
        let shape = BootstrappingParameters::new(log_slots);
        let (stats, _) = run(shape, SecretDistribution::UniformTernary);
        eprintln!(
            "{} slots, ternary secret, encapsulated\n{stats}",
            shape.slots()
        );
        assert!(stats.l2.min > 14.0, "{stats}");
    }
}

#[test]
fn diagonals_encoded_when_used_give_the_same_result() {
    let shape = BootstrappingParameters {
        encode_diagonals_when_used: true,
        ..BootstrappingParameters::new(9)
    };
    let (stats, _) = run(shape, SecretDistribution::UniformTernary);
    assert!(stats.l2.min > 24.5, "{stats}");
}

#[test]
fn a_ternary_secret_without_encapsulation_fails() {
    // With h ~ 2N/3, |I| has a deviation of sqrt(h / 12) ~ 10.7 and reaches 33 to 42 over
    // the 2048 coefficients, beyond k = 16 (the cosine's interpolant diverges past 1.2 k):
    // the message is lost. This is what encapsulation is for. (Sparse packing sees only 32
    // coefficients, which all stay within 1.2 k in a few percent of keys: not a reliable
    // failure to test.)
    let (stats, _) = run(unencapsulated(10), SecretDistribution::UniformTernary);
    assert!(stats.l2.min < 5.0, "{stats}");
}

#[test]
fn encapsulation_keys_round_trip_and_damage_is_refused() {
    let ps = params(SecretDistribution::UniformTernary);
    let params = &ps;
    let bt = Bootstrapper::new(params, BootstrappingParameters::new(4)).unwrap();
    let mut kg = KeyGenerator::new(params).unwrap();
    let sk = kg.gen_secret_key();
    let mut keys = kg.gen_bootstrapping_keys(&sk, &bt).unwrap();
    let enc_keys = keys.encapsulation.take().unwrap();
    let bytes = enc_keys.to_bytes(params).unwrap();
    let back = EncapsulationKeys::from_bytes(params, &bytes).unwrap();
    assert_eq!(back, enc_keys);
    keys.encapsulation = Some(back);
    // The keys read back bootstrap as well as the originals.
    let enc = Encoder::new(params);
    let dec = Decryptor::new(params, &sk).unwrap();
    let values = sample(16, 5);
    let full = enc.replicated(&values);
    let ct = dec
        .encrypt_symmetric(&enc.encode_complex(&full, 0, INPUT_SCALE).unwrap())
        .unwrap();
    let out = bt.bootstrap(&ct, &keys).unwrap();
    let got = enc.decode_complex(&dec.decrypt(&out).unwrap());
    assert!(PrecisionStats::new(&full, &got).l2.min > 24.5);
    // Truncated, or made for other parameters: refused, no panic.
    assert!(EncapsulationKeys::from_bytes(params, &bytes[..bytes.len() - 9]).is_err());
    let other = self::params(SecretDistribution::HammingWeight(32));
    assert!(EncapsulationKeys::from_bytes(&other, &bytes).is_err());
    // A Galois key file is not encapsulation keys.
    let galois = keys.galois.to_bytes(params);
    assert!(EncapsulationKeys::from_bytes(params, &galois).is_err());
}

#[test]
fn missing_encapsulation_keys_are_an_error() {
    let params = params(SecretDistribution::UniformTernary);
    let bt = Bootstrapper::new(&params, BootstrappingParameters::new(4)).unwrap();
    let mut kg = KeyGenerator::new(&params).unwrap();
    let sk = kg.gen_secret_key();
    let mut keys = kg.gen_bootstrapping_keys(&sk, &bt).unwrap();
    keys.encapsulation = None;
    let enc = Encoder::new(&params);
    let ct = Decryptor::new(&params, &sk)
        .unwrap()
        .encrypt_symmetric(&enc.encode(&[0.5], 0, INPUT_SCALE).unwrap())
        .unwrap();
    assert!(bt.bootstrap(&ct, &keys).is_err());
}

#[test]
fn amplification_restores_the_precision_of_small_messages() {
    // A message 2^-12 of the circuit's range loses 12 bits bootstrapped as it is; amplified
    // by 2^12 before ModRaise and shrunk back in EvalMod, it keeps the full-range precision.
    let params = params(SecretDistribution::UniformTernary);
    let shape = BootstrappingParameters::new(9);
    let (bt, keys, enc, dec) = keyed(&params, shape);
    let scale = INPUT_SCALE / 4096.0;
    let values = sample(shape.slots(), 5);
    let ct = dec
        .encrypt_symmetric(&enc.encode_periodic(&values, 0, scale).unwrap())
        .unwrap();
    let amplification = bt.amplification_for(1.0, scale);
    // q_0 is a prime just below 2^60.
    assert!((4000..=4096).contains(&amplification), "{amplification}");
    let precision = |a: u64| {
        let out = bt.bootstrap_amplified(&ct, keys.as_ref(), a).unwrap();
        assert_eq!((out.level(), out.scale()), (bt.output_level(), scale));
        let got = enc.decode_complex(&dec.decrypt(&out).unwrap());
        PrecisionStats::new(&enc.replicated(&values), &got)
    };
    let (plain, amplified) = (precision(1), precision(amplification));
    eprintln!("as it is:\n{plain}\namplified:\n{amplified}");
    assert!(
        amplified.l2.min > plain.l2.min + 8.0,
        "{plain}\n{amplified}"
    );
    assert!(amplified.l2.min > 24.0, "{amplified}");
    assert!(bt.bootstrap_amplified(&ct, keys.as_ref(), 0).is_err());
}
