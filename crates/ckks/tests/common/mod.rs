//! Shared helpers for the integration tests.
#![allow(dead_code)]

use heman_ckks::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Ctx {
    pub params: CkksParameters,
    pub sk: SecretKey,
    pub pk: PublicKey,
    pub rlk: RelinearizationKey,
    pub encoder: Encoder,
    pub encryptor: Encryptor,
    pub decryptor: Decryptor,
    pub eval: Evaluator,
    pub kg: KeyGenerator,
}

pub fn setup(log_n: u32, q: &[u32], p: &[u32], log_scale: u32) -> Ctx {
    let params = CkksParameters::new(log_n, q, p, log_scale).expect("params");
    let mut kg = KeyGenerator::new(&params).expect("keygen");
    let sk = kg.gen_secret_key();
    let pk = kg.gen_public_key(&sk).expect("pk");
    let rlk = kg.gen_relin_key(&sk).expect("rlk");
    Ctx {
        encoder: Encoder::new(&params),
        encryptor: Encryptor::new(&params, &pk).expect("encryptor"),
        decryptor: Decryptor::new(&params, &sk).expect("decryptor"),
        eval: Evaluator::new(&params),
        params,
        sk,
        pk,
        rlk,
        kg,
    }
}

pub fn random_vec(len: usize, bound: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-bound..bound)).collect()
}

pub fn random_complex(len: usize, bound: f64, seed: u64) -> Vec<Complex64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            Complex64::new(
                rng.random_range(-bound..bound),
                rng.random_range(-bound..bound),
            )
        })
        .collect()
}

/// -log2 of the largest absolute error.
pub fn precision_bits(got: &[f64], want: &[f64]) -> f64 {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    -err.max(1e-300).log2()
}

pub fn precision_bits_complex(got: &[Complex64], want: &[Complex64]) -> f64 {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).norm())
        .fold(0.0f64, f64::max);
    -err.max(1e-300).log2()
}

impl Ctx {
    pub fn encrypt(&self, v: &[f64]) -> Ciphertext {
        let pt = self
            .encoder
            .encode(v, self.params.max_level(), self.params.default_scale())
            .expect("encode");
        self.encryptor.encrypt(&pt).expect("encrypt")
    }

    pub fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        self.encoder
            .decode(&self.decryptor.decrypt(ct).expect("decrypt"))
    }
}
