//! What `keyparams` and `inspect` print of TFHE keyparams and models.

use heman_artifacts::tfhe::{CompiledModel, KeyParams};
use heman_compiler::tfhe::{BudgetReport, Plan};

/// The dataflow, a line per stage: what it reads (the input, or an earlier
/// stage's output) and what it computes.
pub fn stages(plan: &Plan) -> Vec<String> {
    plan.stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            let reads: Vec<String> = stage
                .inputs()
                .iter()
                .map(|&v| match v {
                    0 => "input".to_string(),
                    v => format!("stage {}", v - 1),
                })
                .collect();
            format!("  stage {index} (reads {}): {stage}", reads.join(" + "))
        })
        .collect()
}

/// One line per read of a plan's budget (bootstrap inputs, the output).
pub fn reads(budget: &BudgetReport) -> Vec<String> {
    budget
        .reads
        .iter()
        .map(|r| {
            format!(
                "  read '{}': {} values, windows up to {} values, weight 2-norm {:.1}, noise {:.3} values, misread 2^{:.1}",
                r.name, r.values, r.widest_window, r.weight_norm, r.noise_std, r.log2_error
            )
        })
        .collect()
}

/// The keyparams, a line each.
pub fn keyparams(kp: &KeyParams) -> Vec<String> {
    let p = &kp.parameters;
    let s = &kp.summary;
    let input = &kp.input.quantisation;
    vec![
        format!("keyparams (tfhe backend, format version {})", kp.version),
        format!("  security: {}", kp.security),
        format!(
            "  preset {}: N = {}, LWE dimension {} (bootstrap input {})",
            kp.preset.name(),
            p.polynomial_size,
            p.lwe_dimension,
            p.small_lwe_dimension
        ),
        format!(
            "  bit widths: input {}, activations {}, bootstrap windows 2^{} values, output window 2^{} values{}",
            s.bits.input,
            s.bits.activation,
            s.bits.window,
            s.bits.output,
            if s.exact { " (exact mode)" } else { "" }
        ),
        format!(
            "  {} bootstraps and {} ciphertext multiply-adds per inference; misread probability per value <= 2^{:.1}, any misread 2^{:.1}",
            s.bootstraps, s.multiply_adds, s.worst_log2_error, s.any_log2_error
        ),
        format!(
            "  input '{}' {:?}: {} levels{}, encrypted under the {} key (dimension {}){}",
            kp.input.name,
            input.shape,
            input.levels,
            kp.input
                .calibrated_range
                .map_or(String::new(), |(lo, hi)| format!(", calibrated range [{lo:.4}, {hi:.4}]")),
            input.key.name(),
            kp.preset.dimension(input.key),
            super::compile::input_key_note(input.key)
        ),
        format!(
            "  output '{}' {:?}",
            kp.output.name, kp.output.quantisation.shape
        ),
        crate::input::outputs_line(&kp.outputs),
        format!("  parameter fingerprint {}", &kp.params_fingerprint[..16]),
        format!("  model fingerprint {}", &kp.model_fingerprint[..16]),
    ]
}

/// The compiled model: its keyparams, a line per stage and per read.
pub fn model(model: &CompiledModel) -> Vec<String> {
    let mut lines = keyparams(&model.keyparams);
    lines.extend(stages(&model.plan));
    lines.extend(reads(&super::compile::budget_of(model)));
    lines
}
