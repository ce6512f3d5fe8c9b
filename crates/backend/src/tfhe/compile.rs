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
    /// The presets tried before this one and why each was passed over.
    pub passed_over: Vec<String>,
}

/// Whether a quantised model keeps the float model's class, with simulated
/// noise, on at least 90% of the held-out calibration samples (of all of
/// them where none were held out): below it `keyparams` tries the next
/// preset when none was asked for, and warns when none is left.
fn keeps_classes(f: &compiler::Fidelity) -> bool {
    let (kept, of) = f.noisy_kept();
    kept * 10 >= of * 9
}

/// The samples [`compiler::Fidelity::noisy_kept`] counts, in words.
fn kept_samples(f: &compiler::Fidelity) -> &'static str {
    match f.held_out {
        Some(_) => "held-out calibration samples",
        None => "calibration samples",
    }
}

/// The compiler's options from the seam's, and the presets to try in
/// order: the one asked for, else every preset from the cheapest (exact
/// mode: the cheapest only, its guarantee does not depend on the preset);
/// options of other backends are refused by name.
fn tfhe_options(options: &CompileOptions) -> Result<(compiler::Options, Vec<Preset>)> {
    if options.flooding_security.is_some()
        || options.flooding_tail_bound
        || options.bootstrapping.is_some()
        || options.activation_margin.is_some()
    {
        return Err(BackendError::Compile(
            "--flooding-security, --flooding-tail-bound, --bootstrapping and --activation-margin apply to the ckks backend only (TFHE outputs are flooded at their noise, every TFHE lookup bootstraps, and its activations are exact lookups)".into(),
        ));
    }
    if options.packing.as_deref().is_some_and(|p| p != "latency") || options.batch.is_some() {
        return Err(BackendError::Compile(
            "--packing throughput and --batch apply to the ckks backend only (TFHE has no slots to pack a batch in; batches of TFHE inputs are not implemented yet)".into(),
        ));
    }
    if options.security.is_some_and(|bits| bits != 128) {
        return Err(BackendError::Compile(
            "--security above 128 applies to the ckks backend only: tfhe-rs's presets (2_2, 2_3, 3_3) are 128-bit parameter sets".into(),
        ));
    }
    options.refuse_simulation_options()?;
    let margin = options.accumulator_margin;
    if margin.is_some_and(|m| !(0.0..=4.0).contains(&m)) || (margin.is_some() && options.exact) {
        return Err(BackendError::Compile(
            "--accumulator-margin: a share of each window's calibrated range from 0 to 4, without --exact (its windows are the worst case)".into(),
        ));
    }
    let presets = match &options.preset {
        Some(name) => {
            vec![Preset::from_name(name).map_err(|e| BackendError::Compile(e.to_string()))?]
        }
        None if options.exact => vec![Preset::Message2Carry2],
        None => Preset::ALL.to_vec(),
    };
    let compiler_options = compiler::Options {
        preset: presets[0],
        exact: options.exact,
        accumulator_margin: margin,
        ..compiler::Options::default()
    };
    Ok((compiler_options, presets))
}

/// Compiles for each of `presets` in turn until one keeps the float
/// model's classes ([`keeps_classes`]); where none does, the one that keeps
/// the most. A larger preset costs evaluation keys (2_2: 27 MiB, 3_3: 252
/// MiB) and time per bootstrap (about 4x at 3_3), so it is taken only when
/// the cheaper one loses decisions. Returns the choice and, per preset
/// passed over, why.
fn compile_escalating(
    source: &ModelSource,
    options: compiler::Options,
    presets: &[Preset],
    progress: &dyn Progress,
) -> Result<(compiler::Compiled, compiler::Options, Vec<String>)> {
    let (graph, calibration) = (&source.graph, &source.calibration);
    let mut best: Option<(compiler::Compiled, compiler::Options)> = None;
    let mut passed_over = Vec::new();
    let mut last_error = None;
    for &preset in presets {
        let options = compiler::Options { preset, ..options };
        progress.start(&format!("choosing bit widths ({})", preset.name()), None);
        let result = compiler::compile(graph, &calibration.samples, &calibration.ranges, options);
        progress.finish();
        let compiled = match result {
            Ok(compiled) => compiled,
            Err(e) => {
                passed_over.push(format!("preset {}: {e}", preset.name()));
                last_error = Some(e);
                continue;
            }
        };
        let f = compiled.fidelity;
        let kept = keeps_classes(&f);
        // Compared as fractions: presets may hold out as many samples, or
        // fall back to all of them alike, but need not.
        let share = |f: &compiler::Fidelity| {
            let (kept, of) = f.noisy_kept();
            kept as f64 / of.max(1) as f64
        };
        let better = best
            .as_ref()
            .is_none_or(|(b, _)| share(&f) > share(&b.fidelity));
        if better {
            if let Some((b, o)) = best.take() {
                passed_over.push(passed_over_line(&b, o.preset));
            }
            best = Some((compiled, options));
        } else {
            passed_over.push(passed_over_line(&compiled, preset));
        }
        if kept {
            break;
        }
        let (kept, of) = f.noisy_kept();
        info!(preset = preset.name(), kept, of, "below 90% of the classes");
    }
    match best {
        Some((compiled, options)) => Ok((compiled, options, passed_over)),
        None => Err(BackendError::Compile(format!(
            "compiling {} for TFHE: {}",
            source.name,
            last_error.map_or_else(|| "no preset".to_string(), |e| e.to_string())
        ))),
    }
}

/// Why a compiled preset was not taken.
fn passed_over_line(compiled: &compiler::Compiled, preset: Preset) -> String {
    let f = compiled.fidelity;
    let (kept, of) = f.noisy_kept();
    format!(
        "preset {}: keeps the float model's class on {kept} of {of} {} with noise (below 90%)",
        preset.name(),
        kept_samples(&f)
    )
}

/// Compiles `source` for TFHE.
pub fn compile(
    source: &ModelSource,
    options: &CompileOptions,
    progress: &dyn Progress,
) -> Result<Compiled> {
    let (options, presets) = tfhe_options(options)?;
    let graph = &source.graph;
    let start = Instant::now();
    let (compiled, options, passed_over) = compile_escalating(source, options, &presets, progress)?;
    info!(
        seconds = start.elapsed().as_secs_f64(),
        preset = options.preset.name(),
        "compiled"
    );
    let input = graph.inputs[0];
    let (output_name, output_range) = source.joined_output();
    let keyparams = KeyParams::for_plan(
        &compiled.plan,
        compiled.bits,
        &compiled.budget,
        options.exact,
        graph.value(input).name.clone(),
        source.range_of(input),
        output_name,
        output_range,
    );
    Ok(Compiled {
        model: CompiledModel {
            keyparams,
            plan: compiled.plan.clone(),
        },
        compiled,
        options,
        passed_over,
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
    if let Some(h) = f.held_out {
        lines.push(format!(
            "held out ({} of the calibration samples, windows sized on the others): same class on {} ({} with noise) at accumulator margin {} of each window's calibrated range, the best of {:?}",
            h.samples, h.same_argmax, h.noisy_same_argmax, h.margin, compiler::ACCUMULATOR_MARGINS
        ));
    }
    let mut warnings = Vec::new();
    // A small preset can leave too few bits for the network to keep its
    // decisions (a plan left constant is refused by the compiler; one that
    // merely loses classes is reported): say so rather than let it pass
    // as a working model.
    lines.extend(
        compiled
            .passed_over
            .iter()
            .map(|l| format!("passed over: {l}")),
    );
    if !keeps_classes(f) {
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
        let (kept, of) = f.noisy_kept();
        warnings.push(format!(
            "the quantised model keeps the float model's class on only {kept} of {of} {}; {hint}",
            kept_samples(f)
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
        agreement: Some(crate::Agreement {
            samples: f.samples,
            same_class: f.same_argmax,
            same_class_with_noise: Some(f.noisy_same_argmax),
        }),
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
