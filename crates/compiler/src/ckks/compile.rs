//! The model owner's compilation for CKKS: calibrated graph in, parameters
//! and plan out.

use heman_ckks::CkksParameters;
use heman_model::io::dataset::Sample;
use heman_model::{CalibrationRanges, Graph};
use tracing::info;

use crate::ckks::approximation::{choose_degrees, Agreement, Intervals, StageMaps, MARGIN};
use crate::ckks::bootstrap_placement::{place_bootstraps, value_magnitudes};
use crate::ckks::lower::{lower_packed, lower_stages};
use crate::ckks::parameters::{
    bootstrapping_choice, candidates, compute_levels, unmeasured_choice, ParameterChoice,
    Requirements,
};
use crate::ckks::plan::{Bootstrapping, Packing, Plan};
use crate::error::{CompileError, Result};
use crate::graph::front_end;
use crate::graph::stages::{value_depths, Levels, StageKind};

/// Knobs of [`compile`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// log2 of the smallest scale accepted.
    pub min_scale_bits: u32,
    /// log2 of the largest scale worth using.
    pub max_scale_bits: u32,
    /// log2 of the scale worth keeping when trading modulus for smaller,
    /// faster keys.
    pub preferred_scale_bits: u32,
    /// Fraction of calibration samples on which the approximated model must
    /// pick the exact model's largest output.
    pub min_agreement: f64,
    /// Calibration samples used to choose the activation polynomials.
    pub agreement_samples: usize,
    /// The security level whose table bounds the modulus.
    pub security: heman_ckks::params::SecurityLevel,
    /// log2 of the smallest ring tried.
    pub min_log_n: u32,
    /// Whether the plan bootstraps.
    pub bootstrapping: BootstrappingMode,
    /// The share of each activation input's calibrated width its
    /// polynomial's interval extends past on both sides
    /// ([`Intervals`]).
    pub activation_margin: f64,
    /// How inputs lie in the slots.
    pub packing: Packing,
    /// Throughput packing: the inputs one ciphertext holds at least (the
    /// ring's slots then; `None`: the slots of the ring the depth needs).
    pub batch: Option<usize>,
}

/// When a plan bootstraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootstrappingMode {
    /// Only when no ring of the security table holds its depth in one
    /// modulus chain: HE-MAN's models keep their plans.
    #[default]
    Auto,
    /// Always, at N = 2^16 (to measure it against one chain).
    Always,
    /// Never: a depth no ring holds is refused.
    Never,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            min_scale_bits: 26,
            max_scale_bits: 40,
            preferred_scale_bits: 30,
            min_agreement: 0.995,
            agreement_samples: 200,
            security: heman_ckks::params::SecurityLevel::Bits128,
            min_log_n: 12,
            bootstrapping: BootstrappingMode::Auto,
            activation_margin: MARGIN,
            packing: Packing::Latency,
            batch: None,
        }
    }
}

/// The outcome of [`compile`]: parameters, the plan, and how closely the
/// approximated model follows the exact one.
pub struct Compiled {
    /// The bit sizes of the chosen parameter set.
    pub choice: ParameterChoice,
    /// The CKKS parameters `choice` builds.
    pub params: CkksParameters,
    /// Every parameter set of the chosen ring, most precise first
    /// ([`candidates`]): the plan runs under any of them.
    pub candidates: Vec<ParameterChoice>,
    /// The lowered plan.
    pub plan: Plan,
    /// Multiplicative levels the plan consumes.
    pub depth: usize,
    /// The approximated model against the exact one on calibration samples
    /// (`None` when the model has no activation to approximate).
    pub agreement: Option<Agreement>,
}

impl Compiled {
    /// Runs the plan under another of its [`Compiled::candidates`]
    /// (the plan depends on the ring only, which they share).
    pub fn use_parameters(&mut self, choice: ParameterChoice) -> Result<()> {
        assert_eq!(
            choice.log_n, self.choice.log_n,
            "a candidate of the same ring"
        );
        self.params = choice.build()?;
        self.choice = choice;
        Ok(())
    }
}

/// Derives parameters for `graph` from its calibration (`samples` and the
/// `ranges` measured on them) and lowers it.
pub fn compile(
    graph: &Graph,
    samples: &[Sample],
    ranges: &CalibrationRanges,
    options: Options,
) -> Result<Compiled> {
    let (core, outputs, stages) = front_end(graph)?;
    let stage_maps = StageMaps::probe(&core, stages);
    let exact = crate::graph::reference_outputs(&core, samples, options.agreement_samples)?;
    let has_activations = stage_maps
        .stages
        .iter()
        .any(|s| matches!(s.kind, StageKind::Activation(_)));
    let intervals = Intervals {
        ranges,
        margin: options.activation_margin,
    };
    let (degrees, approx, agreement) = choose_degrees(
        &core,
        &stage_maps,
        intervals,
        &exact,
        &outputs,
        options.min_agreement,
    )?;
    if has_activations {
        info!(?degrees, ?agreement, "activation polynomials chosen");
    }
    let depths = value_depths(
        stage_maps
            .stages
            .iter()
            .zip(stage_depths(&stage_maps, &approx))
            .map(|(stage, depth)| (stage.sources.as_slice(), Levels::Spend(depth))),
    );
    let depth = depths.last().copied().unwrap_or(0);
    let max_abs = ranges
        .ranges
        .values()
        .map(|r| r.max_abs())
        .fold(0.0, f64::max);
    let requirements = Requirements {
        depth,
        headroom_bits: Requirements::headroom_for(max_abs),
        min_scale_bits: options.min_scale_bits,
        max_scale_bits: options.max_scale_bits,
        preferred_scale_bits: options.preferred_scale_bits,
        security: options.security,
        min_log_n: options.min_log_n.max(batch_log_n(&options)?),
    };
    let one_chain = candidates(requirements);
    let bootstrap = match (options.bootstrapping, options.packing) {
        (BootstrappingMode::Always, Packing::Throughput) => return Err(CompileError::Parameters(
            "throughput packing does not bootstrap (yet): a model it runs fits one modulus chain"
                .into(),
        )),
        (_, Packing::Throughput) | (BootstrappingMode::Never, _) => false,
        (BootstrappingMode::Always, _) => true,
        (BootstrappingMode::Auto, _) => one_chain.is_err(),
    };
    let agreement = has_activations.then_some(agreement);
    if bootstrap {
        let lowered = Lowered {
            core: &core,
            stage_maps: &stage_maps,
            approx: &approx,
            outputs,
        };
        return compile_bootstrapped(lowered, samples, options, agreement);
    }
    let candidates = one_chain?;
    let choice = unmeasured_choice(&candidates, options.preferred_scale_bits).clone();
    let params = choice.build()?;
    let plan = lower_packed(
        &core,
        &stage_maps,
        &approx,
        (params.slots(), options.packing),
        outputs,
    )?;
    Ok(Compiled {
        choice,
        params,
        candidates,
        plan,
        depth,
        agreement,
    })
}

/// The smallest ring whose slots hold the batch a throughput compilation
/// asks for (0 otherwise).
fn batch_log_n(options: &Options) -> Result<u32> {
    match (options.packing, options.batch) {
        (Packing::Throughput, Some(batch)) => {
            let slots = batch.max(1).next_power_of_two();
            if slots > 1 << 15 {
                return Err(CompileError::Parameters(format!(
                    "a batch of {batch}: at most 32768 inputs per ciphertext (N = 2^16)"
                )));
            }
            Ok(slots.trailing_zeros() + 1)
        }
        _ => Ok(0),
    }
}

/// The levels each stage consumes: its polynomial's depth for an
/// activation, one for the others.
fn stage_depths<'a>(
    stage_maps: &'a StageMaps,
    approx: &'a crate::ckks::approximation::Approximated,
) -> impl Iterator<Item = usize> + 'a {
    stage_maps
        .stages
        .iter()
        .zip(&approx.polynomials)
        .map(|(stage, polynomial)| match (&stage.kind, polynomial) {
            (StageKind::Activation(_), Some(p)) => p.depth(),
            _ => 1,
        })
}

/// What the front end and the approximation made of the graph, ready to
/// lower.
struct Lowered<'a> {
    core: &'a Graph,
    stage_maps: &'a StageMaps,
    approx: &'a crate::ckks::approximation::Approximated,
    outputs: Vec<crate::graph::OutputTensor>,
}

/// Calibration samples whose slot values bound each bootstrap's input.
const MAGNITUDE_SAMPLES: usize = 32;

/// The plan lowered for sparse bootstrapping (N/4 slots, each ciphertext's
/// vector replicated), bootstraps placed where its values run out of compute
/// levels ([`place_bootstraps`]), in the bootstrapping chain
/// ([`bootstrapping_choice`]).
fn compile_bootstrapped(
    lowered: Lowered<'_>,
    samples: &[Sample],
    options: Options,
    agreement: Option<Agreement>,
) -> Result<Compiled> {
    let bootstrapping = Bootstrapping::for_networks(14);
    let shape = bootstrapping.circuit();
    let deepest = stage_depths(lowered.stage_maps, lowered.approx)
        .max()
        .unwrap_or(1);
    let choice = bootstrapping_choice(&shape, deepest, options.max_scale_bits, options.security)?;
    let params = choice.build()?;
    let levels = compute_levels(&choice, &shape);
    let plan = lower_stages(
        lowered.core,
        lowered.stage_maps,
        lowered.approx,
        shape.slots(),
        lowered.outputs,
    )?;
    let inputs: Vec<_> = samples
        .iter()
        .take(MAGNITUDE_SAMPLES)
        .map(|s| s.tensor.clone())
        .collect();
    let magnitudes = value_magnitudes(&plan, &inputs);
    let plan = place_bootstraps(&plan, levels, &magnitudes, bootstrapping)?;
    info!(
        bootstraps = plan.bootstraps(),
        compute_levels = levels,
        log_scale = choice.log_scale,
        "bootstraps placed"
    );
    Ok(Compiled {
        candidates: vec![choice.clone()],
        depth: plan.depth(),
        choice,
        params,
        plan,
        agreement,
    })
}
