//! Compiles a model for TFHE and prints the chosen bit widths, budget and
//! fidelity: `cargo run --release -p heman-compiler --example tfhe_plan --
//! model.onnx calibration [2_2|3_3] [exact] [input,activation,window,output[,intermediate]|search]
//! [worst]` (`worst`: worst-case accumulator windows).

use heman_compiler::tfhe::{compile, Accumulators, Options};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges};
use heman_tfhe::Preset;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let graph = load_onnx(std::path::Path::new(&args[1])).expect("model");
    let samples = load_arrays(std::path::Path::new(&args[2])).expect("calibration");
    let ranges = CalibrationRanges::measure(&graph, &samples).expect("ranges");
    let options = Options {
        preset: Preset::from_name(args.get(3).map_or("2_2", String::as_str)).expect("preset"),
        exact: args.get(4).is_some_and(|a| a == "exact"),
        bits: args.get(5).filter(|b| b.as_str() != "search").map(|b| {
            let v: Vec<u32> = b.split(',').map(|x| x.parse().expect("bits")).collect();
            heman_compiler::tfhe::Bits {
                input: v[0],
                activation: v[1],
                window: v[2],
                output: v[3],
                intermediate: v.get(4).copied().unwrap_or(8),
                weights: None,
            }
        }),
        accumulators: if args.get(6).is_some_and(|a| a == "worst") {
            Accumulators::WorstCase
        } else {
            Accumulators::Calibrated
        },
        ..Options::default()
    };
    let start = std::time::Instant::now();
    let compiled = compile(&graph, &samples, &ranges, options).expect("compiles");
    println!(
        "compiled in {:.2} s: {:?}",
        start.elapsed().as_secs_f64(),
        compiled.bits
    );
    for stage in &compiled.plan.stages {
        println!("  {stage}");
    }
    for r in &compiled.budget.reads {
        println!(
            "  read {:>12}: {} values, window <= {}, |w|2 {:.1}, noise {:.3} values, p 2^{:.1}",
            r.name, r.values, r.widest_window, r.weight_norm, r.noise_std, r.log2_error
        );
    }
    println!(
        "  bootstraps {}, multiply-adds {}, any misread 2^{:.1}",
        compiled.plan.bootstraps(),
        compiled.plan.multiply_adds(),
        compiled.budget.log2_any_error()
    );
    println!("  fidelity {:?}", compiled.fidelity);
}
