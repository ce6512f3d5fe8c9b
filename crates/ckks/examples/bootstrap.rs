//! One CKKS bootstrap at secure parameters: key generation, time per bootstrap (median),
//! precision and peak memory.
//!
//! `cargo run --release -p heman-ckks --example bootstrap -- [--log-n 16] [--log-slots 14]
//! [--compute-levels 6] [--compute-bits 50] [--circuit-bits 60] [--dft-bits 60]
//! [--p-bits 61] [--digit 4] [--secret ternary|h192] [--lean yes|no] [--runs 3]
//! [--arcsine 3] [--ratio 10] [--p-margin 1]`
//!
//! q_0 and EvalMod's primes have `--circuit-bits`, CoeffToSlot's and SlotToCoeff's
//! `--dft-bits`; the message scale is 2^-10 of q_0; P exceeds a key-switching digit by
//! `--p-margin` primes.

use heman_ckks::*;
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    log_n: u32,
    log_slots: u32,
    compute_levels: usize,
    compute_bits: u32,
    circuit_bits: u32,
    dft_bits: u32,
    p_bits: u32,
    digit: usize,
    sparse_secret: bool,
    lean: bool,
    runs: usize,
    arcsine_degree: usize,
    log_message_ratio: u32,
    /// Special primes beyond those a key-switching digit needs.
    p_margin: usize,
}

fn options() -> Options {
    let mut o = Options {
        log_n: 16,
        log_slots: 14,
        compute_levels: 6,
        compute_bits: 50,
        circuit_bits: 60,
        dft_bits: 60,
        p_bits: 61,
        digit: 4,
        sparse_secret: false,
        lean: false,
        runs: 3,
        arcsine_degree: 3,
        log_message_ratio: 10,
        p_margin: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        let number = || value.parse::<usize>().expect("a number");
        match pair[0].as_str() {
            "--log-n" => o.log_n = number() as u32,
            "--log-slots" => o.log_slots = number() as u32,
            "--compute-levels" => o.compute_levels = number(),
            "--compute-bits" => o.compute_bits = number() as u32,
            "--circuit-bits" => o.circuit_bits = number() as u32,
            "--dft-bits" => o.dft_bits = number() as u32,
            "--p-bits" => o.p_bits = number() as u32,
            "--digit" => o.digit = number(),
            "--secret" => o.sparse_secret = value == "h192",
            "--runs" => o.runs = number(),
            "--lean" => o.lean = value == "yes",
            "--arcsine" => o.arcsine_degree = number(),
            "--ratio" => o.log_message_ratio = number() as u32,
            "--p-margin" => o.p_margin = number(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let o = options();
    let shape = BootstrappingParameters {
        encode_diagonals_when_used: o.lean,
        arcsine_degree: o.arcsine_degree,
        log_message_ratio: o.log_message_ratio,
        ..BootstrappingParameters::new(o.log_slots)
    };
    let mut q = vec![o.circuit_bits];
    q.extend(std::iter::repeat_n(o.compute_bits, o.compute_levels));
    q.extend(std::iter::repeat_n(
        o.dft_bits,
        shape.slots_to_coeffs_levels,
    ));
    q.extend(std::iter::repeat_n(o.circuit_bits, shape.eval_mod_depth()));
    q.extend(std::iter::repeat_n(
        o.dft_bits,
        shape.coeffs_to_slots_levels,
    ));
    // P exceeds a digit by one prime's worth (digit primes of the largest size).
    let largest = o.circuit_bits.max(o.dft_bits).max(o.compute_bits);
    let p_count = (o.digit as u32 * largest).div_ceil(o.p_bits) as usize + o.p_margin;
    let p = vec![o.p_bits; p_count];
    let input_scale = 2f64.powi((o.circuit_bits - shape.log_message_ratio) as i32);
    let secret = if o.sparse_secret {
        SecretDistribution::HammingWeight(192)
    } else {
        SecretDistribution::UniformTernary
    };
    let params = CkksParameters::with_secret(o.log_n, &q, &p, o.compute_bits, secret)
        .and_then(|p| p.with_digit_size(o.digit))
        .expect("parameters");
    println!(
        "N = 2^{}, {} slots, L = {} (circuit {} levels, {} left), log2 QP = {:.0}, dnum = {}, secret {:?}, {} threads",
        o.log_n,
        shape.slots(),
        params.max_level(),
        shape.depth(),
        params.max_level() - shape.depth(),
        params.log_qp(),
        params.dnum(),
        secret,
        rayon::current_num_threads()
    );
    let t = Instant::now();
    let bt = Bootstrapper::new(&params, shape).expect("bootstrapper");
    println!(
        "circuit: {:.1} s, {} rotation keys, peak {:.0} MiB",
        t.elapsed().as_secs_f64(),
        bt.rotation_steps().len(),
        peak_mib()
    );
    let t = Instant::now();
    let mut kg = KeyGenerator::new(&params).expect("keygen");
    let sk = kg.gen_secret_key();
    let keys = kg.gen_bootstrapping_keys(&sk, &bt).expect("keys");
    let key_bytes = (keys.galois.len() + 1)
        * params.dnum()
        * 2
        * (params.q().len() + params.p().len())
        * params.n()
        * 8;
    println!(
        "keys: {:.1} s, {:.0} MiB of switching keys, peak {:.0} MiB",
        t.elapsed().as_secs_f64(),
        key_bytes as f64 / (1 << 20) as f64,
        peak_mib()
    );
    let enc = Encoder::new(&params);
    let dec = Decryptor::new(&params, &sk).expect("decryptor");
    let n = shape.slots();
    let values: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos() * 0.5))
        .collect();
    let full = enc.replicated(&values);
    let ct = dec
        .encrypt_symmetric(&enc.encode_complex(&full, 0, input_scale).expect("encode"))
        .expect("encrypt");
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..o.runs {
        let t = Instant::now();
        out = Some(bt.bootstrap(&ct, &keys).expect("bootstrap"));
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let out = out.expect("at least one run");
    let got = enc.decode_complex(&dec.decrypt(&out).expect("decrypt"));
    println!(
        "bootstrap: median {:.2} s of {} ({:?}), output level {}, peak {:.0} MiB",
        times[times.len() / 2],
        times.len(),
        times
            .iter()
            .map(|t| (t * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        out.level(),
        peak_mib()
    );
    println!("{}", PrecisionStats::new(&full, &got));
}
