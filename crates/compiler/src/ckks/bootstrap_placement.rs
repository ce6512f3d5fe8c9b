//! Where a plan bootstraps. Between two bootstraps a ciphertext has the
//! parameters' compute levels; a stage that would need more than its inputs
//! have left reads them refreshed instead. Bootstrapping a value as late as
//! possible (when a stage could not otherwise run) spends every level it
//! has, which for a chain of stages gives the fewest bootstraps (interval
//! covering); a value read by several stages is refreshed once and shared.
//! Orion (Ebel, Garimella, Reagen, ASPLOS 2025) and Fhelipe (Krastev et al.,
//! PLDI 2024) place them by a shortest path over level assignments, which
//! also weighs where the value has fewest ciphertexts; this lazy placement
//! is the baseline they improve on.

use std::collections::HashMap;

use heman_model::Tensor;

use crate::ckks::plan::{Bootstrapping, Plan, PlanStage, StageOp};
use crate::ckks::simulate::simulate_values;
use crate::error::{CompileError, Result};

/// The factor between the largest magnitude calibration saw in a value and
/// the bound its bootstrap is amplified for: inputs beyond calibration keep
/// their precision up to twice as far.
pub const MAGNITUDE_MARGIN: f64 = 2.0;

/// The largest magnitude in any slot of any ciphertext of each value of
/// `plan` (0 the input, `k + 1` stage `k`'s output) over `inputs`, by the
/// slot simulation: slots outside a layout count too, since bootstrapping
/// refreshes every slot.
pub fn value_magnitudes(plan: &Plan, inputs: &[Tensor]) -> Vec<f64> {
    let mut largest = vec![0.0f64; plan.stages.len() + 1];
    for input in inputs {
        for (m, value) in largest.iter_mut().zip(simulate_values(plan, input)) {
            let here = value.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
            *m = m.max(here);
        }
    }
    largest
}

/// `plan` with bootstrap stages where its values run out of `levels`
/// compute levels (see the module's note), each bounded by its value's
/// calibrated `magnitudes` times [`MAGNITUDE_MARGIN`]. Refused, naming the
/// stage, when one stage alone needs more than `levels`.
pub fn place_bootstraps(
    plan: &Plan,
    levels: usize,
    magnitudes: &[f64],
    bootstrapping: Bootstrapping,
) -> Result<Plan> {
    // Old value -> its new index, and its refreshed copy once made.
    let mut renamed: Vec<usize> = vec![0];
    let mut refreshed: HashMap<usize, usize> = HashMap::new();
    let mut depths: Vec<usize> = vec![0];
    let mut stages: Vec<PlanStage> = Vec::with_capacity(plan.stages.len());
    for stage in &plan.stages {
        let need = stage.depth();
        if need > levels {
            return Err(CompileError::Parameters(format!(
                "stage '{}' ({}) needs {need} levels at once; a bootstrapped ciphertext has {levels}",
                stage.name,
                stage.op.name()
            )));
        }
        let mut inputs = Vec::with_capacity(stage.inputs.len());
        for &old in &stage.inputs {
            let v = renamed[old];
            if depths[v] + need <= levels {
                inputs.push(v);
                continue;
            }
            let fresh = *refreshed.entry(old).or_insert_with(|| {
                stages.push(PlanStage {
                    name: format!("{} (bootstrap)", value_name(plan, old)),
                    inputs: vec![v],
                    op: StageOp::Bootstrap {
                        max_abs: (magnitudes[old] * MAGNITUDE_MARGIN).max(1e-9),
                    },
                });
                depths.push(0);
                stages.len()
            });
            inputs.push(fresh);
        }
        let start = inputs.iter().map(|&v| depths[v]).max().unwrap_or(0);
        stages.push(PlanStage {
            name: stage.name.clone(),
            inputs,
            op: stage.op.clone(),
        });
        depths.push(start + need);
        renamed.push(stages.len());
    }
    Ok(Plan {
        stages,
        bootstrapping: Some(bootstrapping),
        ..plan.clone()
    })
}

/// A value's name in reports: the input, or the stage that computes it.
fn value_name(plan: &Plan, value: usize) -> &str {
    match value {
        0 => "input",
        v => &plan.stages[v - 1].name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::layout::SlotLayout;

    fn stage(name: &str, inputs: Vec<usize>) -> PlanStage {
        PlanStage {
            name: name.into(),
            inputs,
            op: StageOp::Square,
        }
    }

    fn plan(stages: Vec<PlanStage>) -> Plan {
        let layout = SlotLayout::compact(4, 8);
        Plan {
            slots: 8,
            input_shape: vec![4],
            input_layout: layout.clone(),
            stages,
            output_shape: vec![4],
            output_layout: layout,
            outputs: Vec::new(),
            bootstrapping: None,
            packing: Default::default(),
        }
    }

    const CIRCUIT: Bootstrapping = Bootstrapping::for_networks(3);

    #[test]
    fn a_chain_bootstraps_once_per_segment_of_levels() {
        let chain = plan((0..7).map(|k| stage(&format!("s{k}"), vec![k])).collect());
        let magnitudes = vec![1.0; 8];
        let placed = place_bootstraps(&chain, 3, &magnitudes, CIRCUIT).unwrap();
        // Three squares per segment: bootstraps before the 4th and the 7th.
        assert_eq!(placed.bootstraps(), 2);
        assert!(placed.check_wiring().is_ok());
        assert!(placed.value_depths().iter().all(|&d| d <= 3));
        let kinds: Vec<&str> = placed.stages.iter().map(|s| s.op.name()).collect();
        assert_eq!(
            kinds,
            [
                "square",
                "square",
                "square",
                "bootstrap",
                "square",
                "square",
                "square",
                "bootstrap",
                "square"
            ]
        );
        assert_eq!(
            placed.stages[3].op,
            StageOp::Bootstrap {
                max_abs: MAGNITUDE_MARGIN
            }
        );
        // Where the depth fits, nothing changes but the circuit.
        let fits = place_bootstraps(&chain, 7, &magnitudes, CIRCUIT).unwrap();
        assert_eq!(fits.stages, chain.stages);
    }

    #[test]
    fn a_value_read_twice_is_refreshed_once_and_a_skip_keeps_its_levels() {
        // s0 <- input; s1 <- s0; s2 <- s1; join = s2 * s0, a residual whose
        // skip (s0) arrives with levels to spare; join2 = join * s2.
        let mut stages: Vec<PlanStage> = (0..3).map(|k| stage(&format!("s{k}"), vec![k])).collect();
        stages.push(PlanStage {
            name: "join".into(),
            inputs: vec![3, 1],
            op: StageOp::Product,
        });
        stages.push(PlanStage {
            name: "join2".into(),
            inputs: vec![4, 3],
            op: StageOp::Product,
        });
        let residual = plan(stages);
        let placed = place_bootstraps(&residual, 3, &[1.0; 6], CIRCUIT).unwrap();
        assert!(placed.check_wiring().is_ok());
        assert!(placed.value_depths().iter().all(|&d| d <= 3));
        // s2 (depth 3) is refreshed once, for both joins; s0 (depth 1) is not.
        assert_eq!(placed.bootstraps(), 1);
        let bootstrap = placed
            .stages
            .iter()
            .position(|s| matches!(s.op, StageOp::Bootstrap { .. }))
            .unwrap();
        assert_eq!(placed.stages[bootstrap].name, "s2 (bootstrap)");
        let readers: Vec<&str> = placed
            .stages
            .iter()
            .filter(|s| s.inputs.contains(&(bootstrap + 1)))
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(readers, ["join", "join2"]);
    }

    #[test]
    fn a_stage_deeper_than_the_compute_levels_is_refused_by_name() {
        let mut deep = plan(vec![stage("s0", vec![0])]);
        deep.stages[0].op = StageOp::Linear(Vec::new());
        deep.stages[0].name = "conv3".into();
        let error = place_bootstraps(&deep, 0, &[1.0; 2], CIRCUIT)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("conv3") && error.contains("needs 1 levels"),
            "{error}"
        );
    }

    #[test]
    fn magnitudes_cover_every_slot() {
        let chain = plan(vec![stage("s0", vec![0])]);
        let input = Tensor::new(vec![4], vec![1.0, -3.0, 2.0, 0.5]);
        assert_eq!(value_magnitudes(&chain, &[input]), [3.0, 9.0]);
    }
}
