//! Measured against predicted noise at a bootstrap's input: reads of fresh
//! values through an identity table on a fine window.
//! `cargo run --release -p heman-tfhe --example noise_check [2_2|3_3] [count]`.

use heman_tfhe::{
    ClientKey, Encoding, InputWindow, KeyChoice, LookupTable, NoiseModel, Preset, HALF_TORUS,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = Preset::from_name(args.get(1).map_or("2_2", String::as_str)).expect("preset");
    let count: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(512);
    let window_values = 1u64 << 14;
    let window = InputWindow::finest(preset, window_values, 1);
    let out = Encoding::fitting(window_values, HALF_TORUS);
    let client = ClientKey::generate(preset);
    let server = client.compressed_server_key().expand();
    let table = LookupTable::new(preset, window, |u| out.encode(u as i64)).unwrap();
    let values: Vec<u64> = (0..count as u64)
        .map(|i| 4000 + (i * 7919) % 8000)
        .collect();
    let plaintexts: Vec<u64> = values
        .iter()
        .map(|&u| window.encoding.encode(u as i64))
        .collect();
    let cts = client.encrypt(&plaintexts, KeyChoice::Big).expand();
    let result = server.bootstrap(&cts, &[table], &vec![0; count]).unwrap();
    let phases = client.decrypt(&result).unwrap();
    let errors: Vec<f64> = phases
        .iter()
        .zip(&values)
        .map(|(&p, &u)| (out.decode(p) - u as i64) as f64)
        .collect();
    let mean = errors.iter().sum::<f64>() / count as f64;
    let std = (errors.iter().map(|e| (e - mean) * (e - mean)).sum::<f64>() / count as f64).sqrt();
    let model = NoiseModel::of(preset);
    let predicted =
        model.at_rotation(model.fresh, KeyChoice::Big).sqrt() / window.encoding.torus_fraction();
    // The bootstrap's output noise: a constant table, phases minus the constant.
    let constant = out.encode(5);
    let flat = LookupTable::new(preset, window, |_| constant).unwrap();
    let outputs = server.bootstrap(&cts, &[flat], &vec![0; count]).unwrap();
    let torus: Vec<f64> = client
        .decrypt(&outputs)
        .unwrap()
        .iter()
        .map(|&p| p.wrapping_sub(constant) as i64 as f64 / 18446744073709551616.0)
        .collect();
    let bootstrap_std = (torus.iter().map(|e| e * e).sum::<f64>() / count as f64).sqrt();
    println!(
        "bootstrap output noise: std 2^{:.2} of the torus; model predicts 2^{:.2}",
        bootstrap_std.log2(),
        model.bootstrap.sqrt().log2()
    );
    println!(
        "{}: reads of {count} fresh values in a window of {window_values}: error mean {mean:.2}, std {std:.2} values; model predicts std {predicted:.2}",
        preset.name()
    );
}
