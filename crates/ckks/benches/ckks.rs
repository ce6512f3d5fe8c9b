//! CKKS micro-benchmarks. Run single-threaded to compare with SEAL:
//! `RAYON_NUM_THREADS=1 cargo bench -p heman-ckks`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use heman_ckks::*;
use std::hint::black_box;
use std::time::Duration;

struct Config {
    name: &'static str,
    log_n: u32,
    q: Vec<u32>,
    p: Vec<u32>,
    log_scale: u32,
}

fn configs() -> Vec<Config> {
    vec![
        // N = 2^13, L = 4: 40 + 4 x 33 + 45 = 217 bits <= 218.
        Config {
            name: "N=2^13,L=4",
            log_n: 13,
            q: vec![40, 33, 33, 33, 33],
            p: vec![45],
            log_scale: 33,
        },
        // SEAL-like shape at N = 2^13: three ciphertext primes and one special prime.
        Config {
            name: "N=2^13,L=2",
            log_n: 13,
            q: vec![50, 40, 40],
            p: vec![50],
            log_scale: 40,
        },
        // N = 2^14, L = 8: 46 + 8 x 38 + 2 x 44 = 438 bits; dnum = 5 digit groups of 2.
        Config {
            name: "N=2^14,L=8",
            log_n: 14,
            q: vec![46, 38, 38, 38, 38, 38, 38, 38, 38],
            p: vec![44, 44],
            log_scale: 38,
        },
    ]
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn bench(c: &mut Criterion) {
    for cfg in configs() {
        let params = CkksParameters::new(cfg.log_n, &cfg.q, &cfg.p, cfg.log_scale).expect("params");
        let mut kg = KeyGenerator::new(&params).expect("keygen");
        let sk = kg.gen_secret_key();
        let pk = kg.gen_public_key(&sk).expect("pk");
        let rlk = kg.gen_relin_key(&sk).expect("rlk");
        let slots = params.slots() as i64;
        let mut pow2: Vec<i64> = Vec::new();
        let mut s = 1;
        while s < slots {
            pow2.push(s);
            pow2.push(-s);
            s *= 2;
        }
        let sixteen: Vec<i64> = (1..=16).collect();
        let gk_pow2 = kg.gen_galois_keys(&sk, &pow2, false).expect("gk");
        let gk16 = kg.gen_galois_keys(&sk, &sixteen, false).expect("gk16");
        println!(
            "[{}] log2(QP) = {:.1}, dnum = {}, alpha = {}",
            cfg.name,
            params.log_qp(),
            params.dnum(),
            params.alpha()
        );
        println!(
            "[{}] relin key: full {:.2} MiB, seeded {:.2} MiB",
            cfg.name,
            mib(rlk.to_bytes(&params).len()),
            mib(rlk.to_bytes(&params).len())
        );
        println!(
            "[{}] Galois keys, all power-of-two steps ({} keys): full {:.1} MiB, seeded {:.1} MiB",
            cfg.name,
            gk_pow2.len(),
            mib(gk_pow2.to_bytes(&params).len()),
            mib(gk_pow2.to_bytes(&params).len())
        );
        println!(
            "[{}] Galois keys, 16 steps: full {:.1} MiB, seeded {:.1} MiB",
            cfg.name,
            mib(gk16.to_bytes(&params).len()),
            mib(gk16.to_bytes(&params).len())
        );

        let encoder = Encoder::new(&params);
        let encryptor = Encryptor::new(&params, &pk).expect("encryptor");
        let eval = Evaluator::new(&params);
        let x: Vec<f64> = (0..params.slots())
            .map(|i| (i as f64 * 0.001).sin())
            .collect();
        let top = params.max_level();
        let pt = encoder
            .encode(&x, top, params.default_scale())
            .expect("encode");
        let ct = encryptor.encrypt(&pt).expect("encrypt");
        let ct2 = encryptor.encrypt(&pt).expect("encrypt");
        let prod = eval.mul_relin(&ct, &ct2, &rlk).expect("mul");
        println!(
            "[{}] ciphertext at top level: full {:.2} MiB",
            cfg.name,
            mib(ct.to_bytes(&params).len())
        );

        let mut g = c.benchmark_group(cfg.name);
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let ring = params.ring();
        let mut limb: Vec<u64> = ct.parts()[0].limb(0).to_vec();
        g.bench_function("primitive_ntt_forward_one_limb", |b| {
            b.iter(|| ring.ntt_forward_limb(black_box(&mut limb), 0))
        });
        let other: Vec<u64> = ct.parts()[1].limb(0).to_vec();
        g.bench_function("primitive_mul_acc_one_limb", |b| {
            b.iter(|| ring.mul_acc_limb(0, black_box(&mut limb), &other, &other))
        });
        g.bench_function("encode", |b| {
            b.iter(|| encoder.encode(black_box(&x), top, params.default_scale()))
        });
        g.bench_function("encrypt_pk", |b| {
            b.iter(|| encryptor.encrypt(black_box(&pt)))
        });
        g.bench_function("mul_plain", |b| {
            b.iter(|| eval.mul_plain(black_box(&ct), &pt))
        });
        g.bench_function("mul_relin", |b| {
            b.iter(|| eval.mul_relin(black_box(&ct), &ct2, &rlk))
        });
        g.bench_function("rescale", |b| b.iter(|| eval.rescale(black_box(&prod))));
        g.bench_function("rotate", |b| {
            b.iter(|| eval.rotate(black_box(&ct), 1, &gk16))
        });
        g.bench_function(BenchmarkId::new("rotate_hoisted", 16), |b| {
            b.iter(|| eval.rotate_hoisted(black_box(&ct), &sixteen, &gk16))
        });
        g.bench_function("keygen_sk_pk_rlk", |b| {
            b.iter(|| {
                let sk = kg.gen_secret_key();
                let pk = kg.gen_public_key(&sk);
                let rlk = kg.gen_relin_key(&sk);
                (pk, rlk)
            })
        });
        g.bench_function("keygen_one_galois_key", |b| {
            b.iter(|| kg.gen_galois_keys(&sk, &[3], false))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
