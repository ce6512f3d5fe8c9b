//! Bootstrapping's correctness at N = 2^11 (parameters outside the security tables, which
//! only small rings keep fast; the circuit does not depend on N).

use super::*;
use crate::encryption::Decryptor;
use crate::keys::KeyGenerator;
use crate::params::SecretDistribution;
use crate::precision::PrecisionStats;

/// q_0 of 50 bits under a message scale of 2^40 (ratio 2^10), 15 levels of 50 bits for the
/// circuit and two for computing.
fn params() -> CkksParameters {
    let mut q = vec![50u32];
    q.extend([50; 17]);
    CkksParameters::insecure_for_tests(11, &q, &[50, 50], 40, SecretDistribution::HammingWeight(32))
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

/// Encrypts `values` (replicated over the slots when fewer) at level 0, bootstraps and
/// returns the precision of the decrypted slots.
fn run(shape: BootstrappingParameters) -> (PrecisionStats, usize) {
    let params = params();
    let bt = Bootstrapper::new(&params, shape).unwrap();
    let mut kg = KeyGenerator::new(&params).unwrap();
    let sk = kg.gen_secret_key();
    let rlk = kg.gen_relin_key(&sk).unwrap();
    let gk = kg.gen_galois_keys(&sk, &bt.rotation_steps(), true).unwrap();
    let enc = Encoder::new(&params);
    let dec = Decryptor::new(&params, &sk).unwrap();
    let n = shape.slots();
    let values = sample(n, 3);
    let full: Vec<Complex64> = values
        .iter()
        .cycle()
        .take(params.slots())
        .copied()
        .collect();
    let pt = enc.encode_complex(&full, 0, 2f64.powi(40)).unwrap();
    let ct = dec.encrypt_symmetric(&pt).unwrap();
    let out = bt.bootstrap(&ct, &rlk, &gk).unwrap();
    assert_eq!(out.level(), bt.output_level());
    assert_eq!(out.scale(), ct.scale());
    let got = enc.decode_complex(&dec.decrypt(&out).unwrap());
    let want: Vec<Complex64> = values
        .iter()
        .cycle()
        .take(params.slots())
        .copied()
        .collect();
    (PrecisionStats::new(&want, &got), out.level())
}

#[test]
fn eval_mod_reference_is_the_sine() {
    let shape = BootstrappingParameters::new(10);
    let em = EvalMod::new(&shape).unwrap();
    for i in -100..=100 {
        let y = i as f64 / 100.0;
        let want = (2.0 * PI * shape.k as f64 * y).sin();
        assert!((em.reference(y) - want).abs() < 1e-6, "{y}");
    }
}

#[test]
fn bootstraps_full_slots() {
    let (stats, level) = run(BootstrappingParameters::new(10));
    eprintln!("full slots, output level {level}\n{stats}");
    assert!(stats.l2.min > 14.0, "{stats}");
}

#[test]
fn bootstraps_sparse_slots() {
    let (stats, level) = run(BootstrappingParameters::new(4));
    eprintln!("16 slots, output level {level}\n{stats}");
    assert!(stats.l2.min > 14.0, "{stats}");
}
