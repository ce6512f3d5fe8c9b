//! The model owner's compilation for TFHE: segments, then the bit widths
//! (input, activation, bootstrap window, output window) chosen by simulating
//! the quantised model with the parameter set's noise on calibration
//! samples, then the plan and its budget.
//!
//! In exact mode only bit widths whose every read is right with probability
//! at least `1 - 2^max_log2_error` qualify: the encrypted model then computes
//! exactly the quantised plaintext model. Otherwise windows may hold more
//! values than a bootstrap resolves (the accumulator is rounded) and the
//! choice is the most accurate one under noise.

use heman_model::io::dataset::Sample;
use heman_model::{CalibrationRanges, Graph, Tensor};
use heman_tfhe::Preset;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::error::{CompileError, Result};
use crate::graph::{broadcast_products, expand_prelu, join_outputs, same_decisions, OutputTensor};
use crate::tfhe::budget::{BudgetReport, NoiseProfile};
use crate::tfhe::plan::{Plan, PlanStage};
use crate::tfhe::quantise::{
    accumulator_ranges, build_plan, AccumulatorRanges, Bits, ACCUMULATOR_MARGINS,
};
use crate::tfhe::reference::Noise;
use crate::tfhe::segments::{expand_products, segments, unfused_products};
use crate::tfhe::validation::{choose_margin, HeldOut};

/// Knobs of [`compile`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The tfhe-rs parameter preset to compile for.
    pub preset: Preset,
    /// Every read right with probability `1 - 2^max_log2_error`.
    pub exact: bool,
    /// log2 of the largest misread probability allowed per read in exact mode.
    pub max_log2_error: f64,
    /// Fixed bit widths instead of the search.
    pub bits: Option<Bits>,
    /// Calibration samples the search simulates.
    pub search_samples: usize,
    /// Calibration samples the reported fidelity is measured on.
    pub report_samples: usize,
    /// How accumulator windows are sized.
    pub accumulators: Accumulators,
    /// The calibrated windows' margin; `None`: the one of
    /// [`ACCUMULATOR_MARGINS`] that keeps the most decisions on held-out
    /// calibration samples ([`crate::tfhe::validation`]).
    pub accumulator_margin: Option<f64>,
}

/// How the window of each linear row (the accumulator a bootstrap or the
/// decryption reads) is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Accumulators {
    /// From the range the row took on the calibration samples, with a
    /// margin ([`ACCUMULATOR_MARGINS`]), where that is narrower than
    /// the worst case: finer weights in wide sums; an input far outside the
    /// calibration can wrap a value around. The default (exact mode uses
    /// the worst case).
    #[default]
    Calibrated,
    /// From the worst case over every input: no value can wrap, whatever
    /// the input, at the price of coarse weights in wide sums.
    WorstCase,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            preset: Preset::Message2Carry2,
            exact: false,
            max_log2_error: -40.0,
            bits: None,
            search_samples: 64,
            report_samples: 200,
            accumulators: Accumulators::Calibrated,
            accumulator_margin: None,
        }
    }
}

/// The quantised model against the float one on calibration samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// Calibration samples compared.
    pub samples: usize,
    /// Same largest output, quantised without noise.
    pub same_argmax: usize,
    /// Mean of `|y_q - y| / |y|` (vector norms).
    pub mean_relative_error: f64,
    /// The same two with simulated encryption noise.
    pub noisy_same_argmax: usize,
    /// Mean relative error with simulated encryption noise.
    pub noisy_mean_relative_error: f64,
    /// What the windows' margin, chosen on held-out calibration samples,
    /// kept on them (`None`: worst-case windows, a margin given, or too
    /// few samples to hold any out).
    pub held_out: Option<HeldOut>,
}

impl Fidelity {
    /// `plan` against the float model on `report` pairs, without noise and
    /// with, and what held-out validation measured.
    fn of(plan: &Plan, report: &[(Tensor, Tensor)], held_out: Option<HeldOut>) -> Result<Self> {
        let (same_argmax, mean_relative_error) = measure(plan, report, false)?;
        let (noisy_same_argmax, noisy_mean_relative_error) = measure(plan, report, true)?;
        Ok(Self {
            samples: report.len(),
            same_argmax,
            mean_relative_error,
            noisy_same_argmax,
            noisy_mean_relative_error,
            held_out,
        })
    }

    /// The decisions kept with simulated noise and of how many samples,
    /// held-out ones where there are (the calibration samples' overstate
    /// it: the windows were sized on them).
    pub fn noisy_kept(&self) -> (usize, usize) {
        match self.held_out {
            Some(h) => (h.noisy_same_argmax, h.samples),
            None => (self.noisy_same_argmax, self.samples),
        }
    }
}

/// The outcome of [`compile`]: the plan, the bit widths it was built at,
/// its noise budget and its fidelity.
pub struct Compiled {
    /// The quantised plan the runtime executes.
    pub plan: Plan,
    /// The bit widths chosen by the search, or given.
    pub bits: Bits,
    /// The plan's noise budget at every read.
    pub budget: BudgetReport,
    /// The quantised model against the float one on calibration samples.
    pub fidelity: Fidelity,
}

fn relative_error(y: &Tensor, reference: &Tensor) -> f64 {
    let (mut diff, mut norm) = (0.0, 0.0);
    for (a, b) in y.data().iter().zip(reference.data()) {
        diff += (a - b) * (a - b);
        norm += b * b;
    }
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// (same argmax count, mean relative error) of `plan` on `exact` pairs.
pub(crate) fn measure(
    plan: &Plan,
    exact: &[(Tensor, Tensor)],
    noisy: bool,
) -> Result<(usize, f64)> {
    let profile = NoiseProfile::of(plan);
    let results: Vec<(bool, f64)> = exact
        .par_iter()
        .enumerate()
        .map(|(index, (x, y))| {
            // The same noise draws for every candidate plan (common random
            // numbers): comparisons between candidates are less noisy.
            let mut rng = ChaCha8Rng::seed_from_u64(index as u64);
            let noise = noisy.then_some(Noise {
                profile: &profile,
                rng: &mut rng,
            });
            let q = plan.evaluate(x, noise)?;
            Ok((same_decisions(&q, y, &plan.outputs), relative_error(&q, y)))
        })
        .collect::<Result<_>>()?;
    let same = results.iter().filter(|r| r.0).count();
    let mean = results.iter().map(|r| r.1).sum::<f64>() / results.len().max(1) as f64;
    Ok((same, mean))
}

/// Lower is better: the fraction of changed decisions plus the relative error.
fn score(plan: &Plan, exact: &[(Tensor, Tensor)], noisy: bool) -> Result<f64> {
    let (same, error) = measure(plan, exact, noisy)?;
    Ok((exact.len() - same) as f64 / exact.len().max(1) as f64 + error)
}

fn set(bits: &mut Bits, coordinate: usize, value: u32) {
    match coordinate {
        0 => bits.window = value,
        1 => bits.activation = value,
        2 => bits.output = value,
        3 => bits.input = value,
        _ => bits.intermediate = value,
    }
}

/// Coordinate descent over the bit widths.
fn search(
    build: &dyn Fn(Bits) -> Result<Plan>,
    exact: &[(Tensor, Tensor)],
    options: &Options,
    has_intermediate: bool,
) -> Result<Bits> {
    let log_n = options.preset.polynomial_size().ilog2();
    let feasible = |plan: &Plan| {
        !options.exact || BudgetReport::of(plan).worst_log2_error() <= options.max_log2_error
    };
    // Set when a candidate was refused for a constant output only.
    let constant_only = std::cell::Cell::new(false);
    let evaluate = |bits: Bits| -> Option<f64> {
        let plan = build(bits)
            .inspect_err(|e| debug!(?bits, error = %e, "bit widths refused"))
            .ok()?;
        if !feasible(&plan) {
            return None;
        }
        if destroyed(&plan, exact).unwrap_or(true) {
            constant_only.set(true);
            return None;
        }
        score(&plan, exact, !options.exact).ok()
    };
    let (windows, outputs): (Vec<u32>, Vec<u32>) = if options.exact {
        ((1..log_n).collect(), (1..=32).collect())
    } else {
        ((3..=log_n + 4).collect(), (4..=56).collect())
    };
    let mut best = if options.exact {
        Bits {
            input: 3,
            activation: 3,
            window: 4,
            output: 6,
            intermediate: 4,
            weights: None,
        }
    } else {
        Bits {
            input: 8,
            activation: 6,
            window: log_n - 1,
            output: 12,
            intermediate: 8,
            weights: None,
        }
    };
    let mut best_score = evaluate(best);
    for round in 0..3 {
        let before = best;
        for coordinate in 0..5 {
            let candidates: Vec<u32> = match coordinate {
                0 => windows.clone(),
                1 => (1..=8).collect(),
                2 => outputs.clone(),
                3 => (1..=16).collect(),
                _ if has_intermediate => (2..=16).collect(),
                _ => Vec::new(),
            };
            let scores: Vec<(u32, Option<f64>)> = candidates
                .iter()
                .map(|&value| {
                    let mut bits = best;
                    set(&mut bits, coordinate, value);
                    (value, evaluate(bits))
                })
                .collect();
            for (value, s) in scores {
                let Some(s) = s else { continue };
                if best_score.is_none_or(|b| s < b - 1e-12) {
                    set(&mut best, coordinate, value);
                    best_score = Some(s);
                }
            }
        }
        debug!(round, ?best, ?best_score, "bit width search");
        if best == before {
            break;
        }
    }
    if best_score.is_none() {
        let message = if constant_only.get() {
            format!(
                "every bit width the {} preset allows{} leaves the quantised model one output for every calibration input (its layers' weights round to zero); try a larger --preset{}",
                options.preset.name(),
                if options.exact { " in exact mode" } else { "" },
                if options.exact { " or drop --exact" } else { "" }
            )
        } else {
            format!(
                "no bit widths make every read of the {} preset right with probability 1 - 2^{}",
                options.preset.name(),
                options.max_log2_error
            )
        };
        return Err(CompileError::Budget {
            node: "(whole model)".into(),
            message,
        });
    }
    Ok(best)
}

/// The graph TFHE segments: trailing operators split off for the data
/// owner, PRelu's slopes expanded, products of two computed values that no
/// lookup absorbs rewritten as two squares, and, where that added nodes,
/// the calibrated ranges measured again on `samples` (the lookups of the
/// new values requantise to them).
fn front_end(
    graph: &Graph,
    samples: &[Sample],
) -> Result<(Graph, Vec<OutputTensor>, Option<CalibrationRanges>)> {
    let (core, outputs) = join_outputs(graph)?;
    let nodes = core.nodes.len();
    let core = broadcast_products(&expand_prelu(&core));
    let products = unfused_products(&core);
    let core = expand_products(&core, &products);
    // Joined outputs are new values too: their lookups requantise to them.
    if core.nodes.len() == nodes && outputs.len() == 1 {
        return Ok((core, outputs, None));
    }
    let ranges = CalibrationRanges::measure(&core, samples)?;
    Ok((core, outputs, Some(ranges)))
}

/// Calibration samples [`destroyed`] compares outputs on.
const CONSTANCY_SAMPLES: usize = 8;

/// Whether `plan`, without noise, gives one output for every calibration
/// input where the float model's outputs differ: the quantisation left a
/// constant where the network was (every weight of a layer rounded to
/// zero), a destroyed model rather than a quantised one.
fn destroyed(plan: &Plan, exact: &[(Tensor, Tensor)]) -> Result<bool> {
    let pairs = &exact[..CONSTANCY_SAMPLES.min(exact.len())];
    let Some(((_, first_y), rest)) = pairs.split_first() else {
        return Ok(false);
    };
    if rest.iter().all(|(_, y)| y.data() == first_y.data()) {
        return Ok(false);
    }
    let outputs: Vec<Tensor> = pairs
        .iter()
        .map(|(x, _)| plan.evaluate::<ChaCha8Rng>(x, None))
        .collect::<Result<_>>()?;
    Ok(outputs.iter().all(|q| q.data() == outputs[0].data()))
}

/// The refusal of a destroyed plan, naming its first linear layer whose
/// weights all rounded to zero (or the whole model).
fn destroyed_error(plan: &Plan) -> CompileError {
    let zeroed = plan.stages.iter().find_map(|stage| match stage {
        PlanStage::Linear(l) if l.rows.rows() > 0 && l.rows.nonzeros() == 0 => Some(l.name.clone()),
        _ => None,
    });
    CompileError::Budget {
        node: zeroed.unwrap_or_else(|| "(whole model)".into()),
        message: "the quantised model gives one output for every calibration input (every weight of this layer rounds to zero at the chosen bit widths); try a larger --preset or drop --exact".into(),
    }
}

/// In exact mode, refuses a plan whose worst read misreads more often than
/// `options.max_log2_error` allows, naming that read.
fn check_exact_budget(budget: &BudgetReport, options: &Options) -> Result<()> {
    if options.exact && budget.worst_log2_error() > options.max_log2_error {
        let worst = budget
            .reads
            .iter()
            .max_by(|a, b| a.log2_error.total_cmp(&b.log2_error))
            .expect("a plan has an output read");
        return Err(CompileError::Budget {
            node: worst.name.clone(),
            message: format!(
                "a window of {} values read with noise of {:.3} values (weights' 2-norm {:.1}) misreads with probability 2^{:.1}, above 2^{}",
                worst.widest_window, worst.noise_std, worst.weight_norm, worst.log2_error, options.max_log2_error
            ),
        });
    }
    Ok(())
}

/// Compiles `graph` for TFHE from its calibration (`samples` and the
/// `ranges` measured on them).
pub fn compile(
    graph: &Graph,
    samples: &[Sample],
    ranges: &CalibrationRanges,
    options: Options,
) -> Result<Compiled> {
    let (core, outputs, measured) = front_end(graph, samples)?;
    let ranges = measured.as_ref().unwrap_or(ranges);
    let segments = segments(&core)?;
    let exact = crate::graph::reference_outputs(
        &core,
        samples,
        options.search_samples.max(options.report_samples),
    )?;
    // Exact mode promises no misread, whatever the input: worst-case windows.
    let calibrated = options.accumulators == Accumulators::Calibrated && !options.exact;
    let margin = options.accumulator_margin.unwrap_or(ACCUMULATOR_MARGINS[0]);
    let accumulators = calibrated
        .then(|| accumulator_ranges(&core, &segments, samples, margin))
        .transpose()?;
    let build_with = |bits: Bits, accumulators: Option<&AccumulatorRanges>| {
        build_plan(
            &core,
            &segments,
            ranges,
            options.preset,
            bits,
            accumulators,
            outputs.clone(),
        )
    };
    let build = |bits: Bits| build_with(bits, accumulators.as_ref());
    // Linear segments read by others have weights of their own width.
    let has_intermediate = segments.iter().any(|s| {
        s.is_linear()
            && s.sources
                .iter()
                .any(|&v| v > 0 && segments[v - 1].is_linear())
    });
    let bits = match options.bits {
        Some(bits) => bits,
        None => search(
            &build,
            &exact[..options.search_samples.min(exact.len())],
            &options,
            has_intermediate,
        )?,
    };
    // The bit widths were searched at the first margin; the margin is then
    // chosen on held-out samples and the windows sized on all of them.
    let validate = calibrated && options.accumulator_margin.is_none();
    let held_out = if validate {
        choose_margin(&core, &segments, samples, &|r| build_with(bits, Some(r)))?
    } else {
        None
    };
    let plan = match held_out {
        Some(h) if h.margin != margin => build_with(
            bits,
            Some(&accumulator_ranges(&core, &segments, samples, h.margin)?),
        )?,
        _ => build(bits)?,
    };
    let budget = BudgetReport::of(&plan);
    check_exact_budget(&budget, &options)?;
    if destroyed(&plan, &exact)? {
        return Err(destroyed_error(&plan));
    }
    let report = &exact[..options.report_samples.min(exact.len())];
    let fidelity = Fidelity::of(&plan, report, held_out)?;
    info!(
        ?bits,
        bootstraps = plan.bootstraps(),
        ?fidelity,
        "TFHE plan"
    );
    Ok(Compiled {
        plan,
        bits,
        budget,
        fidelity,
    })
}
