//! The model owner's compilation for CKKS: derive parameters and lower the
//! graph (heman-compiler), then choose among the ring's parameter sets by
//! encrypted dry runs, size the output flooding, and write the keyparams.

use std::time::Instant;

use heman_artifacts::ckks::{CompiledModel, KeyParams, TensorSpec};
use heman_ckks::params::SecurityLevel;
use heman_compiler::ckks as compiler;
use heman_compiler::ckks::flooding::{
    ClassFlooding, FloodingTarget, OutputFlooding, KEPT_PRECISION_BITS,
};
use heman_compiler::ckks::parameters::{choose_by_precision, ParameterChoice, PrecisionChoice};
use heman_model::Tensor;
use heman_runtime::ckks::{measure_output_noise, OutputNoise};
use tracing::{debug, info};

use crate::error::{BackendError, Result};
use crate::interface::{CompileOptions, ModelSource, Report};
use crate::progress::Progress;

/// Calibration inputs the encrypted dry runs that choose the parameters
/// and size the output flooding run on.
const NOISE_SAMPLES: usize = 2;
/// Calibration inputs a throughput model's dry run packs (repeated over
/// its batch): a batch's noise depends on every slot's values.
const BATCH_NOISE_SAMPLES: usize = 64;

/// What the parameter choice measured.
pub struct ParameterCheck {
    /// The choice and every dry run behind it (indices into the candidates).
    pub choice: PrecisionChoice,
    /// The largest error per output slot allowed.
    pub allowed: f64,
    /// The chosen parameters' output noise.
    pub noise: OutputNoise,
}

impl ParameterCheck {
    /// The chosen parameters' measured error per output slot.
    pub fn slot_error(&self) -> f64 {
        self.choice
            .measured
            .iter()
            .find(|m| m.candidate == self.choice.chosen)
            .map_or(f64::INFINITY, |m| m.slot_error)
    }
}

/// A model compiled for CKKS, in memory.
pub struct Compiled {
    /// The compiled model file's content: keyparams and plan.
    pub model: CompiledModel,
    /// The compiler's result (parameters, candidates, agreement).
    pub compiled: compiler::Compiled,
    /// The dry runs that chose the parameters.
    pub check: ParameterCheck,
}

/// The flooding target the options ask for; options of other backends are
/// refused by name.
fn flooding_target(options: &CompileOptions) -> Result<FloodingTarget> {
    if options.preset.is_some() || options.exact || options.accumulator_margin.is_some() {
        return Err(BackendError::Compile(
            "--preset, --exact and --accumulator-margin apply to the tfhe backend only".into(),
        ));
    }
    options.refuse_simulation_options()?;
    Ok(
        match (options.flooding_security, options.flooding_tail_bound) {
            (Some(s), _) => FloodingTarget::Statistical(s),
            (None, true) => FloodingTarget::TailBound,
            (None, false) => FloodingTarget::NoiseBound,
        },
    )
}

/// Compiles `source` for CKKS.
pub fn compile(
    source: &ModelSource,
    options: &CompileOptions,
    progress: &dyn Progress,
) -> Result<Compiled> {
    let target = flooding_target(options)?;
    let security = SecurityLevel::from_bits(options.security.unwrap_or(128))
        .map_err(|e| BackendError::Compile(format!("--security: {e}")))?;
    let graph = &source.graph;
    let (output_name, output_range) = source.joined_output();
    let output_max = output_range.map_or(1.0, |(lo, hi)| lo.abs().max(hi.abs()));
    let bootstrapping = match options.bootstrapping.as_deref() {
        None | Some("auto") => compiler::BootstrappingMode::Auto,
        Some("always") => compiler::BootstrappingMode::Always,
        Some("never") => compiler::BootstrappingMode::Never,
        Some(other) => {
            return Err(BackendError::Compile(format!(
                "--bootstrapping {other}: auto, always or never"
            )))
        }
    };
    let activation_margin = match options.activation_margin {
        None => compiler::Options::default().activation_margin,
        Some(m) if m.is_finite() && (0.0..=4.0).contains(&m) => m,
        Some(m) => {
            return Err(BackendError::Compile(format!(
                "--activation-margin {m}: a share of the calibrated width from 0 to 4"
            )))
        }
    };
    // A batch size alone asks for throughput packing.
    let packing = match options.packing.as_deref() {
        None if options.batch.is_some() => compiler::Packing::Throughput,
        None => compiler::Packing::Latency,
        Some(name) => compiler::Packing::parse(name).ok_or_else(|| {
            BackendError::Compile(format!("--packing {name}: latency or throughput"))
        })?,
    };
    if options.batch.is_some() && packing != compiler::Packing::Throughput {
        return Err(BackendError::Compile(
            "--batch sizes a throughput model; latency packing takes one input".into(),
        ));
    }
    let options = compiler::Options {
        security,
        bootstrapping,
        activation_margin,
        packing,
        batch: options.batch,
        ..compiler::Options::default()
    };
    let (compiled, check) = compile_in_ring(source, options, output_max, target, progress)?;
    let plan = &compiled.plan;
    let input = TensorSpec {
        calibrated_range: source.range_of(graph.inputs[0]),
        name: graph.value(graph.inputs[0]).name.clone(),
        shape: plan.input_shape.clone(),
        layout: plan.input_layout.clone(),
    };
    let output = TensorSpec {
        calibrated_range: output_range,
        name: output_name,
        shape: plan.output_shape.clone(),
        layout: plan.output_layout.clone(),
    };
    let flooding = OutputFlooding::size(
        target,
        compiled.params.log_n(),
        check.noise.scale.log2(),
        &check.noise.coefficients,
        output_max,
    )
    .map_err(|e| {
        BackendError::Compile(format!(
            "sizing the output flooding of {}: {e}",
            source.name
        ))
    })?;
    let keyparams = KeyParams::for_plan(
        (&compiled.params, compiled.choice.clone()),
        compiled.depth,
        (
            &compiled.plan,
            key_rotation_steps(&compiled.params, &compiled.plan)?,
        ),
        input,
        output,
        flooding,
    );
    Ok(Compiled {
        model: CompiledModel {
            keyparams,
            plan: compiled.plan.clone(),
        },
        compiled,
        check,
    })
}

/// Every rotation the data owner's keys must hold: the plan's and its
/// bootstrapping circuit's.
fn key_rotation_steps(
    params: &heman_ckks::CkksParameters,
    plan: &heman_compiler::ckks::Plan,
) -> Result<Vec<usize>> {
    let circuit = heman_runtime::ckks::bootstrapping::circuit(params, plan, true)
        .map_err(|e| BackendError::Compile(format!("bootstrapping circuit: {e}")))?;
    Ok(heman_runtime::ckks::bootstrapping::rotation_steps(
        plan,
        circuit.as_ref(),
    ))
}

/// The graph compiled in the smallest ring that holds its depth, its
/// parameters chosen there by dry runs ([`choose_parameters`]). That ring
/// may hold the depth only at scales too small for the plan's noise: a
/// larger ring's modulus buys scale, at the cost of speed and keys, and is
/// taken while it makes the outputs more precise, until one keeps the
/// precision.
fn compile_in_ring(
    source: &ModelSource,
    options: compiler::Options,
    output_max: f64,
    target: FloodingTarget,
    progress: &dyn Progress,
) -> Result<(compiler::Compiled, ParameterCheck)> {
    let (graph, calibration) = (&source.graph, &source.calibration);
    let count = match options.packing {
        compiler::Packing::Latency => NOISE_SAMPLES,
        compiler::Packing::Throughput => BATCH_NOISE_SAMPLES,
    };
    let inputs = dry_run_inputs(graph, &calibration.samples, count)?;
    let lower = |options: compiler::Options| {
        let start = Instant::now();
        let compiled = compiler::compile(graph, &calibration.samples, &calibration.ranges, options)
            .map_err(|e| BackendError::Compile(format!("compiling {}: {e}", source.name)))?;
        info!(
            seconds = start.elapsed().as_secs_f64(),
            log_n = compiled.choice.log_n,
            "compiled"
        );
        Ok::<_, BackendError>(compiled)
    };
    let measure = |compiled: &mut compiler::Compiled| {
        choose_parameters(compiled, &inputs, output_max, target, progress)
            .map_err(|e| e.context(format!("measuring the output noise of {}", source.name)))
    };
    let mut compiled = lower(options)?;
    if options.bootstrapping == compiler::BootstrappingMode::Auto
        && compiled.plan.bootstrapping.is_none()
        && !keep_fitting_candidates(&mut compiled)?
    {
        info!("one modulus chain's keys would not fit this machine: bootstrapping instead");
        compiled = lower(compiler::Options {
            bootstrapping: compiler::BootstrappingMode::Always,
            ..options
        })?;
    }
    let mut check = measure(&mut compiled)?;
    while !check.choice.meets && compiled.choice.log_n < 16 {
        let larger = compiler::Options {
            min_log_n: compiled.choice.log_n + 1,
            ..options
        };
        let Ok(mut next) = lower(larger) else {
            break;
        };
        let next_check = measure(&mut next)?;
        info!(
            log_n = next.choice.log_n,
            slot_error = next_check.slot_error(),
            previous = check.slot_error(),
            "a larger ring measured"
        );
        if !(next_check.choice.meets || next_check.slot_error() < check.slot_error()) {
            break;
        }
        (compiled, check) = (next, next_check);
    }
    Ok((compiled, check))
}

/// The `count` calibration inputs the dry runs measure: those at the edge
/// of the most calibrated ranges (each value's smallest and largest
/// element over the set), where an activation's polynomial is steepest and
/// amplifies the noise of its input the most; the first samples break
/// ties.
fn dry_run_inputs(
    graph: &heman_model::Graph,
    samples: &[heman_model::io::dataset::Sample],
    count: usize,
) -> Result<Vec<Tensor>> {
    let inputs = samples
        .iter()
        .map(|s| graph.check_input(0, &s.tensor))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // Per computed value, (smallest, its sample) and (largest, its sample).
    let mut extremes: std::collections::HashMap<usize, [(f64, usize); 2]> = Default::default();
    for (k, x) in inputs.iter().enumerate() {
        graph.run_observed(std::slice::from_ref(x), |id, t| {
            let lo = t.data().iter().copied().fold(f64::INFINITY, f64::min);
            let hi = t.data().iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e = extremes
                .entry(id)
                .or_insert([(f64::INFINITY, k), (f64::NEG_INFINITY, k)]);
            if lo < e[0].0 {
                e[0] = (lo, k);
            }
            if hi > e[1].0 {
                e[1] = (hi, k);
            }
        })?;
    }
    let mut hits = vec![0usize; inputs.len()];
    for [(_, a), (_, b)] in extremes.values() {
        hits[*a] += 1;
        hits[*b] += 1;
    }
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(hits[k]), k));
    Ok(order
        .into_iter()
        .take(count)
        .map(|k| inputs[k].clone())
        .collect())
}

/// Chooses among the compiled model's parameter sets by encrypted dry runs
/// on `inputs` (throw-away keys): the smallest keys whose outputs, flooded
/// as `target` asks, keep [`KEPT_PRECISION_BITS`] of the largest calibrated
/// output ([`choose_by_precision`] decides), and switches `compiled` to it.
fn choose_parameters(
    compiled: &mut compiler::Compiled,
    inputs: &[Tensor],
    output_max: f64,
    target: FloodingTarget,
    progress: &dyn Progress,
) -> Result<ParameterCheck> {
    let allowed = OutputFlooding::allowed_slot_error(output_max);
    let mut noises: Vec<(usize, OutputNoise)> = Vec::new();
    let candidates = compiled.candidates.clone();
    let start = Instant::now();
    progress.start("measuring the output noise (encrypted dry runs)", None);
    let choice = choose_by_precision(&candidates, allowed, |index| -> Result<f64> {
        let candidate = &candidates[index];
        progress.advance(1);
        let params = candidate.build().map_err(compile_error)?;
        let rotations = key_rotation_steps(&params, &compiled.plan)?.len();
        check_key_memory(&params, rotations, candidate)?;
        let noise = measure_output_noise(&params, &compiled.plan, inputs)
            .map_err(|e| BackendError::Internal(e.to_string()))?;
        // The flooding's error per slot on top of the largest error the
        // computation left in an output element.
        let slot_error = OutputFlooding::least(
            target,
            params.log_n(),
            noise.scale.log2(),
            &noise.coefficients,
        )
        .slot_error
            + noise.max_slot_error;
        info!(
            log_scale = candidate.log_scale,
            special_primes = candidate.p_bits.len(),
            key_limbs = candidate.switching_key_limbs(),
            noise_log2 = noise.coefficients.max().log2(),
            slot_error,
            allowed,
            "parameter candidate measured"
        );
        for (k, stage) in noise.stages.iter().enumerate() {
            debug!(
                stage = k,
                kind = compiled.plan.stages[k].op.name(),
                bits = stage.bits(),
                max_error = stage.max_error,
                magnitude = stage.magnitude,
                imaginary = stage.max_imaginary,
                "stage precision in the dry run"
            );
        }
        noises.push((index, noise));
        Ok(slot_error)
    })?;
    progress.finish();
    let noise = noises
        .iter()
        .find(|(i, _)| *i == choice.chosen)
        .map(|(_, n)| n.clone())
        .ok_or_else(|| BackendError::Internal("the chosen candidate was not measured".into()))?;
    compiled
        .use_parameters(candidates[choice.chosen].clone())
        .map_err(compile_error)?;
    info!(
        seconds = start.elapsed().as_secs_f64(),
        dry_runs = choice.measured.len(),
        noise_log2 = noise.coefficients.max().log2(),
        "parameters chosen by measured precision"
    );
    Ok(ParameterCheck {
        choice,
        allowed,
        noise,
    })
}

/// Drops the compiled model's parameter candidates whose evaluation keys would take more
/// than half this machine's available memory (the dry runs' ciphertexts and encoded
/// weights need the rest: the six-ReLU CNN's 22 GiB of keys peaked at 24 GiB); false,
/// leaving them all, when none fits.
fn keep_fitting_candidates(compiled: &mut compiler::Compiled) -> Result<bool> {
    let Some(available) = crate::memory::available_bytes() else {
        return Ok(true);
    };
    let params = &compiled.params;
    let rotations = key_rotation_steps(params, &compiled.plan)?.len();
    let fits = |c: &ParameterChoice| {
        super::evaluation_key_bytes(
            params.n(),
            c.switching_key_limbs(),
            c.q_bits.len(),
            rotations,
        ) as usize
            <= available / 2
    };
    if !compiled.candidates.iter().any(fits) {
        return Ok(false);
    }
    compiled.candidates.retain(fits);
    Ok(true)
}

/// Refuses, before a dry run makes them, evaluation keys that would not fit this machine
/// (a deep network in one modulus chain at N = 2^16 asks for tens of GiB: the process was
/// killed for memory instead of answering).
fn check_key_memory(
    params: &heman_ckks::CkksParameters,
    rotations: usize,
    candidate: &ParameterChoice,
) -> Result<()> {
    let bytes = super::evaluation_key_bytes(
        params.n(),
        candidate.switching_key_limbs(),
        params.q().len(),
        rotations,
    ) as usize;
    let Some(available) = crate::memory::available_bytes() else {
        return Ok(());
    };
    if bytes > available {
        return Err(BackendError::Compile(format!(
            "the evaluation keys at N = 2^{} with {} primes and {rotations} rotations would take {:.1} GiB in memory; this machine has {:.1} GiB available. A network this deep does not fit one modulus chain here: it needs bootstrapping (issue 17)",
            params.log_n(),
            params.q().len(),
            crate::memory::gib(bytes),
            crate::memory::gib(available)
        )));
    }
    Ok(())
}

fn compile_error(e: heman_compiler::CompileError) -> BackendError {
    BackendError::Compile(e.to_string())
}

/// What `keyparams` prints of a CKKS compilation.
pub fn report(compiled: &Compiled) -> Report {
    let kp = &compiled.model.keyparams;
    let mut lines = Vec::new();
    if let Some(a) = compiled.compiled.agreement {
        lines.push(format!(
            "activations replaced by polynomials: the approximated model picks the exact model's class on {}/{} calibration samples ({:.2}%), max relative output deviation {:.2e}",
            a.same_argmax,
            a.samples,
            100.0 * a.fraction(),
            a.max_relative_error
        ));
    }
    lines.push(format!(
        "CKKS N = 2^{}, {} slots, log2(QP) = {:.1} of {} allowed (128-bit), scale 2^{}, depth {}, {} packing{}",
        kp.log_n,
        kp.slots,
        kp.log_qp,
        kp.max_log_qp,
        kp.log_scale,
        kp.depth,
        kp.packing.name(),
        match kp.packing {
            compiler::Packing::Throughput => format!(" (a batch of up to {} inputs per ciphertext file)", kp.slots),
            compiler::Packing::Latency => String::new(),
        }
    ));
    lines.extend(describe_parameter_check(
        &compiled.compiled.candidates,
        &compiled.check,
    ));
    lines.extend(describe_stage_precision(
        &compiled.compiled.plan,
        &compiled.check.noise,
    ));
    let f = &kp.output_flooding;
    let class = |c: &ClassFlooding| {
        format!(
            "Gaussian sigma = 2^{:.1} (largest output noise measured 2^{:.1}, its tail bound 2^{:.1})",
            c.sigma_log2, c.measured_noise_log2, c.noise_bound_log2
        )
    };
    let classes = match &f.off_stride {
        None => class(&f.on_stride),
        Some(off) => format!(
            "on the coefficients at multiples of {} (where the output's noise concentrates) {}, on the others {}",
            f.stride,
            class(&f.on_stride),
            class(off)
        ),
    };
    lines.push(format!(
        "output flooding: {classes}, about {:.1e} added per output; LMSS22 statistical security {}",
        f.slot_error,
        if f.statistical_security >= 0.0 {
            format!("{:.0} bits", f.statistical_security)
        } else {
            "none provable (flooding at the noise bound; see docs/SECURITY.md)".into()
        }
    ));
    lines.push(format!(
        "{} rotation keys needed: {:?}",
        kp.rotation_steps.len(),
        kp.rotation_steps
    ));
    let mut warnings = Vec::new();
    if !compiled.check.choice.meets && kp.output_flooding.target == FloodingTarget::NoiseBound {
        warnings.push(format!(
            "even the most precise parameters leave an error of {:.2e} per output, above the {:.2e} wanted ({KEPT_PRECISION_BITS} bits of the largest calibrated output)",
            compiled.check.choice.measured[0].slot_error, compiled.check.allowed
        ));
    }
    Report {
        summary: format!(
            "N = 2^{}, {}, scale 2^{}, log2(QP) {:.0}/{}, {} rotation keys, output flooding sigma 2^{:.1}",
            kp.log_n,
            match kp.bootstrapping {
                Some(b) => format!(
                    "{} bootstraps of 2^{} slots",
                    compiled.compiled.plan.bootstraps(),
                    b.log_slots
                ),
                None => format!("depth {}", kp.depth),
            } + match kp.packing {
                compiler::Packing::Throughput => ", throughput packing",
                compiler::Packing::Latency => "",
            },
            kp.log_scale,
            kp.log_qp,
            kp.max_log_qp,
            kp.rotation_steps.len(),
            f.on_stride.sigma_log2
        ),
        lines,
        warnings,
        agreement: compiled.compiled.agreement.map(|a| crate::Agreement {
            samples: a.samples,
            same_class: a.same_argmax,
            same_class_with_noise: None,
        }),
    }
}

/// What the parameter choice measured, a line each.
fn describe_parameter_check(candidates: &[ParameterChoice], check: &ParameterCheck) -> Vec<String> {
    let chosen = &candidates[check.choice.chosen];
    let mut lines = vec![format!(
        "parameters: {} special prime(s), {} key-switching digit(s), {} residue polynomials per switching key: {} of {} candidates in this ring, {}",
        chosen.p_bits.len(),
        chosen.digits(),
        chosen.switching_key_limbs(),
        if check.choice.chosen == 0 { "the most precise" } else { "the smallest keys" },
        candidates.len(),
        if check.choice.meets {
            format!(
                "whose flooded outputs keep {KEPT_PRECISION_BITS} bits (error per output at most {:.1e})",
                check.allowed
            )
        } else {
            format!(
                "and still short of {KEPT_PRECISION_BITS} bits (error per output above {:.1e})",
                check.allowed
            )
        }
    )];
    for m in &check.choice.measured {
        let c = &candidates[m.candidate];
        lines.push(format!(
            "  dry run: scale 2^{}, {} special prime(s), {} polynomials per key: error per output {:.1e}",
            c.log_scale,
            c.p_bits.len(),
            c.switching_key_limbs(),
            m.slot_error
        ));
    }
    lines
}

/// Where the chosen dry run lost precision: its least precise stage, and
/// what each bootstrap kept (bits of each value's largest |x|).
fn describe_stage_precision(
    plan: &heman_compiler::ckks::Plan,
    noise: &OutputNoise,
) -> Option<String> {
    let (lowest, least) = noise
        .stages
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.bits().total_cmp(&b.1.bits()))?;
    let mut line = format!(
        "precision by stage in the dry run: lowest {:.1} bits, after stage {lowest} ({})",
        least.bits(),
        plan.stages[lowest].op.name()
    );
    let bootstraps: Vec<String> = plan
        .stages
        .iter()
        .zip(&noise.stages)
        .filter(|(stage, _)| matches!(stage.op, compiler::StageOp::Bootstrap { .. }))
        .map(|(_, p)| format!("{:.1}", p.bits()))
        .collect();
    if !bootstraps.is_empty() {
        line += &format!("; after each bootstrap {}", bootstraps.join(", "));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use heman_compiler::ckks::Options as CompileOptions;
    use heman_model::io::dataset::{load_arrays, Sample};
    use heman_model::{load_onnx, CalibrationRanges, Graph};

    use super::*;

    /// Counts the dry runs.
    #[derive(Default)]
    struct Runs(AtomicU64);

    impl Progress for Runs {
        fn start(&self, _: &str, _: Option<u64>) {}
        fn advance(&self, units: u64) {
            self.0.fetch_add(units, Ordering::Relaxed);
        }
        fn finish(&self) {}
    }

    fn calibrated_digits_square() -> (Graph, Vec<Sample>, CalibrationRanges, Vec<Tensor>) {
        let root = heman_testkit::repo_root().join("examples/digits");
        let graph = load_onnx(&root.join("digits_square.onnx")).unwrap();
        let samples = load_arrays(&root.join("calibration.npz")).unwrap();
        let ranges = CalibrationRanges::measure(&graph, &samples).unwrap();
        let inputs = samples
            .iter()
            .take(2)
            .map(|s| graph.check_input(0, &s.tensor).unwrap())
            .collect();
        (graph, samples, ranges, inputs)
    }

    /// The model owner's parameter choice by encrypted dry runs: the chosen set
    /// is one of the plan's candidates, measured to keep the output precision,
    /// and with keys no larger than the most precise one's; a flooding no
    /// candidate can carry keeps the most precise and says so.
    #[test]
    fn parameters_chosen_by_dry_runs_keep_the_output_precision() {
        let (graph, samples, ranges, inputs) = calibrated_digits_square();
        let output_max = ranges
            .get(&graph.value(graph.outputs[0]).name)
            .unwrap()
            .max_abs();
        // Scales down to 2^20 admit a second candidate in N = 2^13: two special
        // primes at a smaller scale.
        let options = CompileOptions {
            min_scale_bits: 20,
            ..CompileOptions::default()
        };
        let mut compiled = compiler::compile(&graph, &samples, &ranges, options).unwrap();
        assert!(compiled.candidates.len() > 1, "{:?}", compiled.candidates);
        let runs = Runs::default();
        let check = choose_parameters(
            &mut compiled,
            &inputs,
            output_max,
            FloodingTarget::NoiseBound,
            &runs,
        )
        .unwrap();
        assert!(
            check.choice.meets,
            "{:?} allowed {}",
            check.choice.measured, check.allowed
        );
        assert_eq!(
            runs.0.load(Ordering::Relaxed) as usize,
            check.choice.measured.len()
        );
        let chosen = &compiled.candidates[check.choice.chosen];
        assert_eq!(&compiled.choice, chosen);
        assert_eq!(compiled.params, chosen.build().unwrap());
        let measured = check
            .choice
            .measured
            .iter()
            .find(|m| m.candidate == check.choice.chosen)
            .unwrap();
        assert!(measured.slot_error <= check.allowed);
        assert_eq!(
            check.allowed,
            OutputFlooding::allowed_slot_error(output_max)
        );
        assert!(chosen.switching_key_limbs() <= compiled.candidates[0].switching_key_limbs());
        // The recorded noise is the chosen parameters' own: its scale is theirs.
        assert!((check.noise.scale.log2() - chosen.log_scale as f64).abs() < 1.0);

        let check = choose_parameters(
            &mut compiled,
            &inputs,
            output_max,
            FloodingTarget::Statistical(40),
            &crate::Silent,
        )
        .unwrap();
        assert_eq!((check.choice.chosen, check.choice.meets), (0, false));
        assert_eq!(compiled.choice, compiled.candidates[0]);
    }
}
