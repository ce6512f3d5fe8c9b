//! Lowers a model for CKKS at the default polynomial degree and prints each
//! stage's slot layout and linear transform (layout work without the
//! parameter search and dry runs of `heman keyparams`):
//! `cargo run --release -p heman-compiler --example ckks_plan --
//! model.onnx calibration [slots]`.

use heman_compiler::ckks::{compile_at_degree, StageOp};
use heman_model::io::dataset::load_arrays;
use heman_model::{load_onnx, CalibrationRanges};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let graph = load_onnx(std::path::Path::new(&args[1])).expect("model");
    let samples = load_arrays(std::path::Path::new(&args[2])).expect("calibration");
    let ranges = CalibrationRanges::measure(&graph, &samples).expect("ranges");
    let slots = args.get(3).map_or(1 << 14, |s| s.parse().expect("slots"));
    let start = std::time::Instant::now();
    let plan = compile_at_degree(&graph, slots, Some(&ranges)).expect("compiles");
    println!(
        "lowered in {:.2} s: {} stages",
        start.elapsed().as_secs_f64(),
        plan.stages.len()
    );
    let layouts = plan.value_layouts();
    let (mut diagonals, mut ciphertext_stages) = (0, 0);
    for (k, stage) in plan.stages.iter().enumerate() {
        let ciphertexts = layouts[k + 1].ciphertexts;
        ciphertext_stages += ciphertexts;
        match &stage.op {
            StageOp::Linear(parts) => {
                diagonals += parts
                    .iter()
                    .flat_map(|t| &t.blocks)
                    .map(|b| b.diagonal_count())
                    .sum::<usize>();
                let lowered: Vec<String> = parts.iter().map(|t| t.to_string()).collect();
                println!("  {k:>3} {:<24} {}", stage.name, lowered.join(" + "));
            }
            op => println!(
                "  {k:>3} {:<24} {} on {ciphertexts} ciphertext(s)",
                stage.name,
                op.name()
            ),
        }
    }
    println!("  {diagonals} diagonals, {ciphertext_stages} stage-ciphertexts");
}
