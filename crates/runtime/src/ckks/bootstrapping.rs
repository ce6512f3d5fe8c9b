//! The bootstrapping circuit of a plan that bootstraps, and the rotations
//! its keys must hold besides the plan's own.

use heman_ckks::{Bootstrapper, CkksParameters};
use heman_compiler::ckks::Plan;

use crate::error::Result;

/// The circuit of `plan`'s bootstrap stages under `params` (`None` when it
/// has none). `lean` keeps the DFT matrices as slot values, encoded when
/// used: hundreds of MiB instead of gigabytes at N = 2^16, for some time per
/// bootstrap.
pub fn circuit(params: &CkksParameters, plan: &Plan, lean: bool) -> Result<Option<Bootstrapper>> {
    let Some(b) = plan.bootstrapping else {
        return Ok(None);
    };
    let shape = heman_ckks::BootstrappingParameters {
        encode_diagonals_when_used: lean,
        ..b.circuit()
    };
    Ok(Some(Bootstrapper::new(params, shape)?))
}

/// Every rotation step the keys of `plan` must hold: the plan's and its
/// circuit's, sorted, without repeats (conjugation is asked for apart).
pub fn rotation_steps(plan: &Plan, circuit: Option<&Bootstrapper>) -> Vec<usize> {
    let mut steps = plan.rotation_steps();
    if let Some(c) = circuit {
        steps.extend(c.rotation_steps().into_iter().map(|s| s as usize));
    }
    steps.sort_unstable();
    steps.dedup();
    steps
}
