//! What `inspect` prints of CKKS keyparams and compiled models.

use heman_artifacts::ckks::{CompiledModel, KeyParams};
use heman_compiler::ckks::{Packing, SlotLayout, StageOp};

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
        match kp.packing {
            Packing::Latency => "  packing: latency (one input spread over the slots)".to_string(),
            Packing::Throughput => format!(
                "  packing: throughput (a batch of up to {} inputs, one per slot; one ciphertext per tensor element)",
                kp.slots
            ),
        },
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
    lines.push(crate::input::outputs_line(&kp.outputs));
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

/// The compiled model: its keyparams, then a line per stage of its
/// dataflow: what it reads, what it computes, the levels it spends and
/// where its output lies.
pub fn model(model: &CompiledModel) -> Vec<String> {
    let mut lines = keyparams(&model.keyparams);
    let plan = &model.plan;
    let depths = plan.value_depths();
    let layouts = plan.value_layouts();
    for (index, stage) in plan.stages.iter().enumerate() {
        let reads: Vec<String> = stage
            .inputs
            .iter()
            .map(|&v| match v {
                0 => "input".to_string(),
                v => format!("stage {}", v - 1),
            })
            .collect();
        let what = match &stage.op {
            StageOp::Linear(parts) => parts
                .iter()
                .map(|l| format!("linear {l}"))
                .collect::<Vec<_>>()
                .join(" + "),
            StageOp::WeightedSum { parts, .. } => parts
                .iter()
                .map(|p| {
                    let terms: usize = p.rows.iter().map(Vec::len).sum();
                    let windows = match p.window_sums.first() {
                        Some(w) => format!(
                            " after {} window sums of {} values",
                            p.window_sums.len(),
                            w.len()
                        ),
                        None => String::new(),
                    };
                    format!(
                        "weighted sums of {} ciphertexts into {} ({terms} weights{windows})",
                        p.inputs,
                        p.rows.len()
                    )
                })
                .collect::<Vec<_>>()
                .join(" + "),
            StageOp::Square => "square".to_string(),
            StageOp::Bootstrap { max_abs } => {
                format!("bootstrap (amplified for |x| <= {max_abs:.3})")
            }
            StageOp::Product => "product of its two inputs".to_string(),
            StageOp::Activation {
                function,
                interval,
                polynomial,
            } => format!(
                "{} on [{:.3}, {:.3}]",
                heman_compiler::ckks::approximation::describe(function, polynomial),
                interval.0,
                interval.1,
            ),
        };
        let start = stage.inputs.iter().map(|&v| depths[v]).max().unwrap_or(0);
        lines.push(format!(
            "  stage {index} '{}' <- {}: {what}; levels {start} -> {}; output in {}",
            stage.name,
            reads.join(", "),
            depths[index + 1],
            describe_layout(layouts[index + 1]),
        ));
    }
    lines
}

/// Where a value lies, in one phrase.
fn describe_layout(layout: &SlotLayout) -> String {
    if layout.is_batched(layout.slots) {
        return format!(
            "{} ciphertext(s), one per value, a batch's inputs in their slots",
            layout.ciphertexts
        );
    }
    let span = layout.positions.iter().max().map_or(0, |&p| p as usize + 1);
    let mut text = format!(
        "{} ciphertext(s), {} values over {} slots",
        layout.ciphertexts,
        layout.len(),
        span.min(layout.slots * layout.ciphertexts)
    );
    if let Some(period) = layout.period {
        text.push_str(&format!(", replicated every {period}"));
    }
    text
}
