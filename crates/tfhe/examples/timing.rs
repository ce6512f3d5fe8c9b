//! Key sizes and the cost of one bootstrap (with and without its keyswitch)
//! and one multiply-add per preset:
//! `cargo run --release -p heman-tfhe --example timing [2_2|3_3] [values]`.

use std::time::Instant;

use heman_tfhe::{
    ClientKey, Encoding, InputWindow, IntegerRows, KeyChoice, LookupTable, Preset, HALF_TORUS,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = Preset::from_name(args.get(1).map_or("2_2", String::as_str)).expect("preset");
    let values: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(16);
    let noise = heman_tfhe::NoiseModel::of(preset);
    println!(
        "noise std (log2 of torus fraction): fresh {:.1}, bootstrap {:.1}, keyswitch {:.1}, modulus switch {:.1}",
        noise.fresh.log2() / 2.0,
        noise.bootstrap.log2() / 2.0,
        noise.keyswitch.log2() / 2.0,
        noise.modulus_switch.log2() / 2.0
    );
    let t = Instant::now();
    let client = ClientKey::generate(preset);
    let compressed = client.compressed_server_key();
    let keygen = t.elapsed().as_secs_f64();
    let bytes = compressed.to_bytes().len();
    let t = Instant::now();
    let server = compressed.expand();
    let expand = t.elapsed().as_secs_f64();
    println!(
        "{}: keygen {keygen:.2} s, compressed server key {:.1} MiB, expanded {:.1} MiB (expansion {expand:.2} s)",
        preset.name(),
        bytes as f64 / (1 << 20) as f64,
        server.expanded_size() as f64 / (1 << 20) as f64
    );
    let window = InputWindow {
        encoding: Encoding::fitting(16, HALF_TORUS),
        count: 16,
    };
    let table = LookupTable::new(preset, window, |u| u).unwrap();
    let plaintexts: Vec<u64> = (0..values)
        .map(|i| window.encoding.encode(i as i64 % 16))
        .collect();
    let mut out = None;
    for key in [KeyChoice::Big, KeyChoice::Small] {
        let cts = client.encrypt(&plaintexts, key).expand();
        let t = Instant::now();
        out = Some(
            server
                .bootstrap(&cts, std::slice::from_ref(&table), &vec![0; values])
                .unwrap(),
        );
        let pbs = t.elapsed().as_secs_f64();
        println!(
            "{values} bootstraps of {}-key inputs in {pbs:.3} s on {} threads: {:.1} ms each, {:.1} ms per thread",
            key.name(),
            rayon::current_num_threads(),
            1e3 * pbs / values as f64,
            1e3 * pbs * rayon::current_num_threads() as f64 / values as f64
        );
    }
    let out = out.expect("two runs");
    let mut rows = IntegerRows::new(values);
    for _ in 0..values {
        rows.push_row((0..values as u32).map(|c| (c, 3 + c as i64 % 5)), 0);
    }
    let t = Instant::now();
    let _ = rows.apply(&out, window.encoding).unwrap();
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{} multiply-adds in {dt:.3} s: {:.2} us each",
        rows.nonzeros(),
        1e6 * dt / rows.nonzeros() as f64
    );
}
