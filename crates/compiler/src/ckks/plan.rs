//! The compiled model: a dataflow of slot-level stages between an input and
//! an output layout. It holds plaintext weights (the model owner's secret) and
//! no key material.

use serde::{Deserialize, Serialize};

use heman_model::ops::Activation;

use crate::ckks::approximation::Polynomial;
use crate::ckks::layout::SlotLayout;
use crate::ckks::linear::LinearTransform;
pub use crate::graph::stages::Levels;

/// What one step of a CKKS [`Plan`] computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StageOp {
    /// An affine stage: one baby-step giant-step diagonal product per input
    /// (`parts[k]` reads input `k`), summed before one rescale (one level).
    /// The parts share their output layout and rotate-and-sum steps; the
    /// bias is the first part's.
    Linear(Vec<LinearTransform>),
    /// A throughput plan's affine stage: each output element's ciphertext
    /// the weighted sum of input elements' ciphertexts (`parts[k]` reads
    /// input `k`), the parts summed before one rescale (one level), no
    /// rotation; the bias is the first part's.
    WeightedSum {
        /// One set of weighted sums per input.
        parts: Vec<WeightRows>,
        /// Where the output's elements lie ([`SlotLayout::batched`]).
        output_layout: SlotLayout,
    },
    /// Every slot squared (one ciphertext multiplication per ciphertext).
    Square,
    /// The slotwise product of the stage's two inputs, which share one
    /// layout (one ciphertext multiplication per ciphertext).
    Product,
    /// A nonlinearity on values calibrated to lie in `interval`, evaluated
    /// as `polynomial` (on `[-1, 1]` when the preceding stage already mapped
    /// the interval there).
    Activation {
        /// The activation the polynomial replaces.
        function: Activation,
        /// The calibrated input interval, widened by the approximation's margin,
        /// in input units.
        interval: (f64, f64),
        /// The Chebyshev polynomial evaluated in its place.
        polynomial: Polynomial,
    },
    /// Every ciphertext refreshed by the plan's bootstrapping circuit
    /// ([`Plan::bootstrapping`]): the same values at the top of the compute
    /// levels, whatever level they arrived at.
    Bootstrap {
        /// The largest magnitude calibration saw in any slot of the input
        /// (layout or not), with margin: the runtime amplifies the message to
        /// the circuit's range by it.
        max_abs: f64,
    },
}

impl StageOp {
    /// Multiplicative levels the operation consumes (a bootstrap: none of
    /// the compute levels; it restores them, see [`StageOp::consumes`]).
    pub fn depth(&self) -> usize {
        match self {
            StageOp::Linear(_)
            | StageOp::WeightedSum { .. }
            | StageOp::Square
            | StageOp::Product => 1,
            StageOp::Activation { polynomial, .. } => polynomial.depth(),
            StageOp::Bootstrap { .. } => 0,
        }
    }

    /// What the operation does to the compute levels.
    pub fn consumes(&self) -> Levels {
        match self {
            StageOp::Bootstrap { .. } => Levels::Refresh,
            op => Levels::Spend(op.depth()),
        }
    }

    /// What the operation computes, in reports and logs.
    pub fn name(&self) -> &'static str {
        match self {
            StageOp::Linear(_) => "linear",
            StageOp::WeightedSum { .. } => "weighted sum",
            StageOp::Square => "square",
            StageOp::Product => "product",
            StageOp::Activation { function, .. } => function.name(),
            StageOp::Bootstrap { .. } => "bootstrap",
        }
    }
}

/// One input's share of a [`StageOp::WeightedSum`]: `y[o] = sum of w x[i]
/// over (i, w) in rows[o]`, plus `bias[o]`; with window sums, `x` are the
/// sums, not the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRows {
    /// Elements (ciphertexts) of the input.
    pub inputs: usize,
    /// Sums of input elements taken first, each with weight one (an
    /// average pool's windows factored out of the map, its scale folded
    /// into `rows`: additions only, no level), which `rows` then read; empty
    /// when `rows` read the input.
    #[serde(default)]
    pub window_sums: Vec<Vec<u32>>,
    /// Per output element, its (input element, weight) terms; zero weights
    /// are left out, so a convolution costs its kernel's taps only.
    pub rows: Vec<Vec<(u32, f64)>>,
    /// Per output element, the constant added (zero in all parts but the
    /// first).
    pub bias: Vec<f64>,
}

impl WeightRows {
    /// How many values `rows` read: the window sums, or the input's
    /// elements.
    pub fn read(&self) -> usize {
        if self.window_sums.is_empty() {
            self.inputs
        } else {
            self.window_sums.len()
        }
    }
}

/// How a plan lays inputs out in the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Packing {
    /// One input spread over the slots of its ciphertexts: the lowest
    /// latency per input, rotations for the linear layers.
    #[default]
    Latency,
    /// One input per slot position, as many inputs per ciphertext as it has
    /// slots and one ciphertext per tensor element: linear layers are
    /// weighted sums of ciphertexts, without rotations or Galois keys
    /// (CryptoNets, Gilad-Bachrach et al., ICML 2016).
    Throughput,
}

impl Packing {
    /// The packing's name on command lines and in files.
    pub fn name(self) -> &'static str {
        match self {
            Packing::Latency => "latency",
            Packing::Throughput => "throughput",
        }
    }

    /// The packing a command line names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "latency" => Some(Packing::Latency),
            "throughput" => Some(Packing::Throughput),
            _ => None,
        }
    }
}

/// The bootstrapping circuit a plan's [`StageOp::Bootstrap`] stages run:
/// the default circuit (`heman_ckks::BootstrappingParameters::new`) for
/// this many slots with EvalMod's arcsine and message ratio as given, which
/// the parameters' modulus chain is built around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrapping {
    /// log2 of the slots the circuit refreshes: the plan's slot count.
    pub log_slots: u32,
    /// Degree of EvalMod's arcsine (0: none, two levels fewer).
    #[serde(default = "default_arcsine_degree")]
    pub arcsine_degree: usize,
    /// log2 of q_0 over the message's scale in the circuit.
    #[serde(default = "default_log_message_ratio")]
    pub log_message_ratio: u32,
}

fn default_arcsine_degree() -> usize {
    heman_ckks::BootstrappingParameters::new(1).arcsine_degree
}

fn default_log_message_ratio() -> u32 {
    heman_ckks::BootstrappingParameters::new(1).log_message_ratio
}

/// Largest arcsine degree a circuit may ask for.
pub const MAX_ARCSINE_DEGREE: usize = 15;
/// The message ratios a circuit may ask for (EvalMod's sine is close to
/// linear only well inside its period; beyond 2^20 the message keeps no
/// precision above EvalMod's error).
pub const LOG_MESSAGE_RATIOS: std::ops::RangeInclusive<u32> = 4..=20;

impl Bootstrapping {
    /// The circuit for deep networks: no arcsine, two more compute levels in
    /// the same chain for the same precision (measured at N = 2^16, 2^14
    /// slots, `examples/bootstrap.rs`: 16.8 bits at worst and 19.0 on average
    /// without it, 16.9 and 19.0 with it; at this message ratio the sine's
    /// curvature is below EvalMod's other errors).
    pub const fn for_networks(log_slots: u32) -> Self {
        Self {
            log_slots,
            arcsine_degree: 0,
            log_message_ratio: 10,
        }
    }

    /// The circuit's shape.
    pub fn circuit(&self) -> heman_ckks::BootstrappingParameters {
        heman_ckks::BootstrappingParameters {
            arcsine_degree: self.arcsine_degree,
            log_message_ratio: self.log_message_ratio,
            ..heman_ckks::BootstrappingParameters::new(self.log_slots)
        }
    }

    /// Why a circuit read from a file cannot be built, if it cannot.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.arcsine_degree > MAX_ARCSINE_DEGREE {
            return Err(format!(
                "arcsine degree {}: at most {MAX_ARCSINE_DEGREE}",
                self.arcsine_degree
            ));
        }
        if !LOG_MESSAGE_RATIOS.contains(&self.log_message_ratio) {
            return Err(format!(
                "message ratio 2^{}: between 2^{} and 2^{}",
                self.log_message_ratio,
                LOG_MESSAGE_RATIOS.start(),
                LOG_MESSAGE_RATIOS.end()
            ));
        }
        Ok(())
    }

    /// The level inputs are encrypted at and bootstraps come out at under
    /// parameters whose top level is `max_level`: the top of the compute
    /// levels, below the circuit's.
    pub fn compute_top(&self, max_level: usize) -> usize {
        max_level.saturating_sub(self.circuit().depth())
    }
}

/// The level fresh inputs are encrypted at under parameters whose top level
/// is `max_level`: the top, or the top of the compute levels when the plan
/// bootstraps (the circuit's levels are only the bootstraps').
pub fn input_level(bootstrapping: Option<&Bootstrapping>, max_level: usize) -> usize {
    bootstrapping.map_or(max_level, |b| b.compute_top(max_level))
}

/// One step of a CKKS [`Plan`]: an operation on the values it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStage {
    /// The graph node the stage ends at, for reports.
    pub name: String,
    /// The values the stage reads: 0 is the plan's input, `k + 1` the
    /// output of stage `k`. Inputs at different levels are brought down to
    /// the lowest before the operation.
    pub inputs: Vec<usize>,
    /// What it computes.
    pub op: StageOp,
}

impl PlanStage {
    /// Multiplicative levels the stage consumes.
    pub fn depth(&self) -> usize {
        self.op.depth()
    }
}

/// A model compiled for CKKS: a dataflow of slot-level stages between an
/// input and an output layout, in evaluation order, the last one's output
/// the plan's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Slots per ciphertext the layouts use: N/2, or fewer (a power of two)
    /// when every ciphertext holds its slot vector replicated, as sparse
    /// bootstrapping refreshes it.
    pub slots: usize,
    /// Shape of the model's input tensor.
    pub input_shape: Vec<usize>,
    /// Where the data owner packs the input's elements.
    pub input_layout: SlotLayout,
    /// The stages, in evaluation order; the last one writes the output
    /// (none: the output is the input).
    pub stages: Vec<PlanStage>,
    /// Shape of the tensor the stages output (before post-processing).
    pub output_shape: Vec<usize>,
    /// Where the output's elements lie in the last stage's ciphertexts.
    pub output_layout: SlotLayout,
    /// The model's outputs, whose elements the output holds concatenated
    /// in order, each with the operators (Softmax) the data owner applies
    /// after decryption.
    pub outputs: Vec<crate::graph::OutputTensor>,
    /// The bootstrapping circuit of its [`StageOp::Bootstrap`] stages, when
    /// it has some: the compute levels run between bootstraps.
    #[serde(default)]
    pub bootstrapping: Option<Bootstrapping>,
    /// How inputs lie in the slots: with [`Packing::Throughput`] every
    /// layout is [`SlotLayout::batched`] and slot `j` of every ciphertext
    /// belongs to the batch's input `j`.
    #[serde(default)]
    pub packing: Packing,
}

impl Plan {
    /// The format version of a serialised plan (what a compiled model file
    /// holds): raised whenever the plan's types change, so that a file of
    /// another heman is refused rather than misread. 2: linear transforms
    /// carry pool window sums. 3: a dataflow of stages (each names the
    /// values it reads), multi-input linear stages, products; the
    /// operators and activations of the graph compiler. 4: several
    /// outputs, each with its own post-processing. 5: bootstrap stages, the
    /// bootstrapping circuit, replicated slot vectors. 6: the output
    /// flooding per class of coefficients (in the keyparams a compiled
    /// model carries). 7: throughput packing (weighted-sum stages). The
    /// schema test (`tests/plan_format.rs`) fails when the types change
    /// without it.
    pub const FORMAT_VERSION: u16 = 7;

    /// Compute levels consumed before each value is ready (0 the input,
    /// `k + 1` stage `k`'s output) since the input or the last bootstrap: a
    /// stage starts after the deepest of its inputs.
    pub fn value_depths(&self) -> Vec<usize> {
        crate::graph::stages::value_depths(
            self.stages
                .iter()
                .map(|s| (s.inputs.as_slice(), s.op.consumes())),
        )
    }

    /// Where each value lies (0 the input, `k + 1` stage `k`'s output): a
    /// linear stage's output layout, else its first input's (elementwise
    /// stages and products keep their operands' layout).
    pub fn value_layouts(&self) -> Vec<&SlotLayout> {
        let mut layouts = vec![&self.input_layout];
        for stage in &self.stages {
            let layout = match &stage.op {
                StageOp::Linear(parts) => &parts[0].output_layout,
                StageOp::WeightedSum { output_layout, .. } => output_layout,
                _ => layouts[stage.inputs[0]],
            };
            layouts.push(layout);
        }
        layouts
    }

    /// Levels the whole plan consumes: the depth of its output.
    pub fn depth(&self) -> usize {
        self.value_depths().last().copied().unwrap_or(0)
    }

    /// For each value, the index of the last stage that reads it (`None`
    /// when only the output or nothing reads it): when it may be freed.
    pub fn last_readers(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.stages.len() + 1];
        for (s, stage) in self.stages.iter().enumerate() {
            for &v in &stage.inputs {
                last[v] = Some(s);
            }
        }
        last
    }

    /// Refuses a plan whose stages read values not computed before them or
    /// have the wrong number of inputs: what a loaded plan is checked for
    /// before anything runs it.
    pub fn check_wiring(&self) -> Result<(), String> {
        for (s, stage) in self.stages.iter().enumerate() {
            let expected = match &stage.op {
                StageOp::Linear(parts) => parts.len(),
                StageOp::WeightedSum { parts, .. } => parts.len(),
                StageOp::Product => 2,
                StageOp::Square | StageOp::Activation { .. } | StageOp::Bootstrap { .. } => 1,
            };
            if stage.inputs.len() != expected || expected == 0 {
                return Err(format!(
                    "stage {s} ('{}') reads {} value(s), its operation takes {expected}",
                    stage.name,
                    stage.inputs.len()
                ));
            }
            if let StageOp::Linear(parts) = &stage.op {
                let first = &parts[0];
                if parts.iter().any(|t| {
                    t.output_layout != first.output_layout || t.sum_steps != first.sum_steps
                }) {
                    return Err(format!(
                        "stage {s} ('{}'): its parts write different layouts",
                        stage.name
                    ));
                }
            }
            if let StageOp::WeightedSum {
                parts,
                output_layout,
            } = &stage.op
            {
                self.check_weighted_sum(s, &stage.name, parts, output_layout)?;
            }
            if let StageOp::Bootstrap { max_abs } = &stage.op {
                if self.bootstrapping.is_none() || !(max_abs.is_finite() && *max_abs > 0.0) {
                    return Err(format!(
                        "stage {s} ('{}') bootstraps without a circuit or a finite positive bound",
                        stage.name
                    ));
                }
            }
            if let Some(&v) = stage.inputs.iter().find(|&&v| v > s) {
                return Err(format!(
                    "stage {s} ('{}') reads value {v}, which is not computed before it",
                    stage.name
                ));
            }
        }
        Ok(())
    }

    /// Refuses weighted sums that do not fit the plan's packing: rows and
    /// biases other than the output's elements, a term past its input.
    fn check_weighted_sum(
        &self,
        s: usize,
        name: &str,
        parts: &[WeightRows],
        output_layout: &SlotLayout,
    ) -> Result<(), String> {
        let outputs = output_layout.len();
        let fits = self.packing == Packing::Throughput
            && output_layout.is_batched(self.slots)
            && parts.iter().all(|p| {
                p.rows.len() == outputs
                    && p.bias.len() == outputs
                    && p.rows
                        .iter()
                        .flatten()
                        .all(|&(i, w)| (i as usize) < p.read() && w.is_finite())
                    && p.window_sums
                        .iter()
                        .flatten()
                        .all(|&i| (i as usize) < p.inputs)
                    && p.bias.iter().all(|b| b.is_finite())
            });
        if fits {
            Ok(())
        } else {
            Err(format!(
                "stage {s} ('{name}'): its weighted sums do not fit a throughput plan's {outputs} output elements and its inputs"
            ))
        }
    }

    /// Every linear transform of the plan.
    pub fn transforms(&self) -> impl Iterator<Item = &LinearTransform> {
        self.stages.iter().flat_map(|s| match &s.op {
            StageOp::Linear(parts) => parts.as_slice(),
            _ => &[],
        })
    }

    /// Number of bootstrap stages.
    pub fn bootstraps(&self) -> usize {
        self.stages
            .iter()
            .filter(|s| matches!(s.op, StageOp::Bootstrap { .. }))
            .count()
    }

    /// Every rotation step some stage uses: the Galois keys to generate
    /// (the bootstrapping circuit's are the parameters', not the plan's).
    pub fn rotation_steps(&self) -> Vec<usize> {
        let mut steps: Vec<usize> = self
            .transforms()
            .flat_map(LinearTransform::rotation_steps)
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Ciphertexts flowing between stages, at most.
    pub fn max_ciphertexts(&self) -> usize {
        self.transforms()
            .map(|l| l.input_ciphertexts.max(l.output_ciphertexts))
            .max()
            .unwrap_or(self.input_layout.ciphertexts)
    }
}
