//! The model owner's compilation for TFHE: quantise, choose bit widths,
//! lower (heman-compiler), and write the keyparams.

use std::time::Instant;

use heman_artifacts::tfhe::{CompiledModel, KeyParams};
use heman_compiler::tfhe::{self as compiler, BudgetReport};
use heman_tfhe::{KeyChoice, Preset};
use tracing::info;

use crate::error::{BackendError, Result};
use crate::interface::{CompileOptions, ModelSource, Report};
use crate::progress::Progress;

/// A model compiled for TFHE, in memory.
pub struct Compiled {
    /// The compiled model file's content: keyparams and plan.
    pub model: CompiledModel,
    /// The compiler's result (bits, budget, fidelity).
    pub compiled: compiler::Compiled,
    /// The options it was compiled with.
    pub options: compiler::Options,
}

/// The compiler's options from the seam's; options of other backends are
/// refused by name.
fn tfhe_options(options: &CompileOptions) -> Result<compiler::Options> {
    if options.flooding_security.is_some() {
        return Err(BackendError::Compile(
            "--flooding-security applies to the ckks backend only (TFHE outputs are flooded at their noise)".into(),
        ));
    }
    if options.security.is_some_and(|bits| bits != 128) {
        return Err(BackendError::Compile(
            "--security above 128 applies to the ckks backend only: tfhe-rs's presets (2_2, 2_3, 3_3) are 128-bit parameter sets".into(),
        ));
    }
    options.refuse_simulation_options()?;
    let preset = match &options.preset {
        Some(name) => Preset::from_name(name).map_err(|e| BackendError::Compile(e.to_string()))?,
        None => Preset::Message2Carry2,
    };
    Ok(compiler::Options {
        preset,
        exact: options.exact,
        ..compiler::Options::default()
    })
}

/// Compiles `source` for TFHE.
pub fn compile(
    source: &ModelSource,
    options: &CompileOptions,
    progress: &dyn Progress,
) -> Result<Compiled> {
    let options = tfhe_options(options)?;
    let (graph, calibration) = (&source.graph, &source.calibration);
    let start = Instant::now();
    progress.start("choosing bit widths", None);
    let compiled = compiler::compile(graph, &calibration.samples, &calibration.ranges, options);
    progress.finish();
    let compiled = compiled
        .map_err(|e| BackendError::Compile(format!("compiling {} for TFHE: {e}", source.name)))?;
    info!(seconds = start.elapsed().as_secs_f64(), "compiled");
    let (input, output) = (graph.inputs[0], graph.outputs[0]);
    let keyparams = KeyParams::for_plan(
        &compiled.plan,
        compiled.bits,
        &compiled.budget,
        options.exact,
        graph.value(input).name.clone(),
        source.range_of(input),
        graph.value(output).name.clone(),
        source.range_of(output),
    );
    Ok(Compiled {
        model: CompiledModel {
            keyparams,
            plan: compiled.plan.clone(),
        },
        compiled,
        options,
    })
}

/// What `keyparams` prints of a TFHE compilation.
pub fn report(compiled: &Compiled) -> Report {
    let kp = &compiled.model.keyparams;
    let mut lines = super::describe::keyparams(kp);
    lines.extend(super::describe::stages(&compiled.compiled.plan));
    lines.extend(super::describe::reads(&compiled.compiled.budget));
    let f = &compiled.compiled.fidelity;
    lines.push(format!(
        "quantised model vs float on {} calibration samples: same class on {} ({} with simulated encryption noise), mean relative output error {:.4} ({:.4})",
        f.samples, f.same_argmax, f.noisy_same_argmax, f.mean_relative_error, f.noisy_mean_relative_error
    ));
    let mut warnings = Vec::new();
    // A small preset can leave too few bits for the network to keep its
    // decisions (a plan left constant is refused by the compiler; one that
    // merely loses classes is reported): say so rather than let it pass
    // as a working model.
    if f.noisy_same_argmax * 10 < f.samples * 9 {
        let largest =
            compiled.compiled.plan.preset == *heman_tfhe::Preset::ALL.last().expect("presets");
        let hint = match (compiled.options.exact, largest) {
            (true, false) => "drop --exact or choose a larger --preset",
            (true, true) => "drop --exact",
            (false, false) => "choose a larger --preset",
            // Nothing larger to offer: the layers are too wide for the
            // bootstrap's precision (or the calibration too narrow).
            (false, true) => "no larger preset exists: narrower layers or more representative calibration data would help",
        };
        warnings.push(format!(
            "the quantised model keeps the float model's class on only {} of {} calibration samples; {hint}",
            f.noisy_same_argmax, f.samples
        ));
    }
    let s = &kp.summary;
    Report {
        summary: format!(
            "TFHE preset {}, bits in/act/window/out {}/{}/{}/{}{}, {} bootstraps per inference",
            kp.preset.name(),
            s.bits.input,
            s.bits.activation,
            s.bits.window,
            s.bits.output,
            if s.exact { " (exact)" } else { "" },
            s.bootstraps
        ),
        lines,
        warnings,
    }
}

/// Whether inputs go under the small key, in words.
pub(super) fn input_key_note(key: KeyChoice) -> &'static str {
    match key {
        KeyChoice::Small => ": its first bootstraps skip the keyswitch",
        KeyChoice::Big => "",
    }
}

/// The budget of a loaded plan (for `inspect`).
pub(super) fn budget_of(model: &CompiledModel) -> BudgetReport {
    BudgetReport::of(&model.plan)
}
