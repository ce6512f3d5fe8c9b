//! What `inspect` prints of CKKS keyparams and compiled models.

use heman_artifacts::ckks::{CompiledModel, KeyParams};
use heman_compiler::ckks::PlanStage;

/// The keyparams, a line each.
pub fn keyparams(kp: &KeyParams) -> Vec<String> {
    let mut lines = vec![
        format!(
            "keyparams ({} backend, format version {})",
            kp.backend, kp.version
        ),
        format!("  security: {}", kp.security),
        format!(
            "  N = 2^{} ({} slots), log2(QP) = {:.1} of {} allowed, scale 2^{}, depth {}",
            kp.log_n, kp.slots, kp.log_qp, kp.max_log_qp, kp.log_scale, kp.depth
        ),
        format!("  q: {:?}", kp.q),
        format!("  p: {:?}", kp.p),
        format!(
            "  rotation steps ({}): {:?}",
            kp.rotation_steps.len(),
            kp.rotation_steps
        ),
    ];
    for (role, spec) in [("input", &kp.input), ("output", &kp.output)] {
        lines.push(format!(
            "  {role} '{}' {:?} in {} ciphertext(s){}",
            spec.name,
            spec.shape,
            spec.layout.ciphertexts,
            spec.calibrated_range
                .map_or(String::new(), |(lo, hi)| format!(
                    ", calibrated range [{lo:.4}, {hi:.4}]"
                ))
        ));
    }
    lines.push(format!(
        "  parameter fingerprint {}",
        &kp.params_fingerprint[..16]
    ));
    lines.push(format!(
        "  model fingerprint {}",
        &kp.model_fingerprint[..16]
    ));
    lines
}

/// The compiled model: its keyparams, then a line per stage.
pub fn model(model: &CompiledModel) -> Vec<String> {
    let mut lines = keyparams(&model.keyparams);
    for (index, stage) in model.plan.stages.iter().enumerate() {
        lines.push(match stage {
            PlanStage::Linear(l) => format!("  stage {index}: linear {l}"),
            PlanStage::Square => format!("  stage {index}: square"),
            PlanStage::Activation {
                function,
                interval,
                polynomial,
            } => format!(
                "  stage {index}: {} on [{:.3}, {:.3}], depth {}",
                heman_compiler::ckks::approximation::describe(function, polynomial),
                interval.0,
                interval.1,
                polynomial.depth()
            ),
        });
    }
    lines
}
