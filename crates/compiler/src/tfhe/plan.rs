//! The compiled model for the TFHE backend: the input quantisation the
//! data owner applies, linear stages (integer weights, the model owner's
//! secret), lookup stages (one bootstrap per value) and the output decoding.
//!
//! Every vector of ciphertexts carries integers `u` in a window `0..count`;
//! the real value they stand for is `offset + scale * u`.

use std::fmt;

use heman_tfhe::{Encoding, InputWindow, IntegerRows, KeyChoice, Preset};
use serde::{Deserialize, Serialize};

use crate::tfhe::function::Expression;

/// What a vector's integers stand for: `offset[i] + scale[i] * u[i]` with
/// `u[i]` in `0..count[i]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantisation {
    /// Per value: the real step between consecutive integers.
    pub scale: Vec<f64>,
    /// Per value: the real value integer 0 stands for.
    pub offset: Vec<f64>,
    /// Per value: the integers of its window (`u` in `0..count`).
    pub count: Vec<u64>,
}

impl Quantisation {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.count.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.count.is_empty()
    }

    /// The real value that integer `u` of value `i` stands for.
    pub fn real(&self, i: usize, u: f64) -> f64 {
        self.offset[i] + self.scale[i] * u
    }
}

/// The data owner's input quantisation: `u = round((x - offset) / scale)`
/// clamped to `0..levels`, encrypted at `encoding` under `key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    /// Shape of the input tensor.
    pub shape: Vec<usize>,
    /// Real step between consecutive input levels.
    pub scale: f64,
    /// Real value of level 0.
    pub offset: f64,
    /// Number of input levels (2^bits).
    pub levels: u64,
    /// The torus encoding the levels are encrypted at.
    pub encoding: Encoding,
    /// The small key where every input value reaches a bootstrap through
    /// linear stages only (see [`Plan::input_key`]).
    #[serde(default)]
    pub key: KeyChoice,
}

impl PlanInput {
    /// The input level of real value `x`.
    pub fn quantise(&self, x: f64) -> u64 {
        ((x - self.offset) / self.scale)
            .round()
            .clamp(0.0, (self.levels - 1) as f64) as u64
    }

    /// log2 of the number of levels.
    pub fn bits(&self) -> f64 {
        (self.levels as f64).log2()
    }
}

/// How the data owner reads the output: decode each phase at `encoding`,
/// clamp to the window, map through `values`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOutput {
    /// Shape of the output tensor (before post-processing).
    pub shape: Vec<usize>,
    /// The torus encoding the output integers are carried at.
    pub encoding: Encoding,
    /// What each output integer stands for.
    pub values: Quantisation,
}

impl PlanOutput {
    /// The window integer a decrypted phase stands for.
    pub fn decode(&self, i: usize, phase: u64) -> u64 {
        self.encoding
            .decode(phase)
            .clamp(0, self.values.count[i] as i64 - 1) as u64
    }
}

/// Integer weighted sums of the input ciphertexts (which carry integers at
/// `encoding`); each row's bias also moves its output window to start at 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearStage {
    /// The last graph node's name, for messages and reports.
    pub name: String,
    /// The values read (0 the input, `k + 1` stage `k`'s output): the rows'
    /// columns index their concatenation, in this order.
    pub inputs: Vec<usize>,
    /// The integer weights and biases (the model owner's secret).
    pub rows: IntegerRows,
    /// The torus encoding the inputs, and hence the sums, are carried at.
    pub encoding: Encoding,
}

/// The input window of one lookup table: `count` integers standing for the
/// accumulator values `offset + scale * u`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInput {
    /// Integers in the window.
    pub count: u64,
    /// Real step between consecutive integers.
    pub scale: f64,
    /// Real accumulator value of integer 0.
    pub offset: f64,
}

/// The output levels of a lookup stage: `offset + scale * y`, `y` in `0..levels`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    /// Real step between consecutive output levels.
    pub scale: f64,
    /// Real value of level 0.
    pub offset: f64,
    /// Number of levels.
    pub levels: u64,
}

impl Levels {
    /// The level nearest to real `y`, clamped to `0..levels`.
    pub fn quantise(&self, y: f64) -> i64 {
        ((y - self.offset) / self.scale)
            .round()
            .clamp(0.0, (self.levels - 1) as f64) as i64
    }
}

/// One bootstrap per value: value `i` reads table `table_of[i]`, which maps
/// its accumulator through `function` and requantises to `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupStage {
    /// The last graph node's name, for messages and reports.
    pub name: String,
    /// The value read (0 the input, `k + 1` stage `k`'s output).
    pub input: usize,
    /// The fused elementwise function the tables evaluate.
    pub function: Expression,
    /// The torus encoding of the accumulators read.
    pub input_encoding: Encoding,
    /// The distinct input windows, one table each.
    pub tables: Vec<TableInput>,
    /// Per value: the index of its table.
    pub table_of: Vec<u32>,
    /// The output levels.
    pub output: Levels,
    /// The torus encoding the outputs are written at.
    pub output_encoding: Encoding,
}

impl LookupStage {
    /// The bootstrap input window of table `table`.
    pub fn window(&self, table: usize) -> InputWindow {
        InputWindow {
            encoding: self.input_encoding,
            count: self.tables[table].count,
        }
    }

    /// The output integer table `table` holds for input `u`: the function
    /// and the requantisation fused.
    pub fn output_value(&self, table: usize, u: u64) -> i64 {
        let t = &self.tables[table];
        self.output
            .quantise(self.function.apply(t.offset + t.scale * u as f64))
    }

    /// Integers in the largest table window.
    pub fn widest_window(&self) -> u64 {
        self.tables.iter().map(|t| t.count).max().unwrap_or(0)
    }
}

/// One level of a max tree (MaxPool): output `i` is the larger of inputs
/// `a` and `b` of `pairs[i]`, computed as `a + relu(b - a)`: one weighted
/// difference and one bootstrap (input `a` alone when `b` is `None`). All
/// values are integers in `0..count` at `encoding`, so the differences lie
/// in a window of `2 count - 1` values read exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxStage {
    /// The MaxPool node's name and tree level, for messages and reports.
    pub name: String,
    /// The value read (0 the input, `k + 1` stage `k`'s output).
    pub input: usize,
    /// Per output: the input indices of `a` and `b` (`None`: `a` passes
    /// through).
    pub pairs: Vec<(u32, Option<u32>)>,
    /// The torus encoding of inputs and outputs.
    pub encoding: Encoding,
    /// Integers in the inputs' window (`0..count`).
    pub count: u64,
}

impl MaxStage {
    /// The window the differences `b - a + count - 1` are read in.
    pub fn window(&self) -> InputWindow {
        InputWindow {
            encoding: self.encoding,
            count: 2 * self.count - 1,
        }
    }

    /// `relu(b - a)` from the shifted difference `u = b - a + count - 1`.
    pub fn relu(&self, u: u64) -> i64 {
        (u as i64 - (self.count as i64 - 1)).max(0)
    }

    /// The shifted differences of the pairs that have two inputs.
    pub fn differences(&self, inputs: usize) -> IntegerRows {
        let mut rows = IntegerRows::new(inputs);
        for &(a, b) in &self.pairs {
            if let Some(b) = b {
                rows.push_row([(b, 1), (a, -1)], self.count as i64 - 1);
            }
        }
        rows
    }

    /// Bootstraps the level performs: one per pair with two inputs.
    pub fn bootstraps(&self) -> usize {
        self.pairs.iter().filter(|p| p.1.is_some()).count()
    }
}

/// One step of a TFHE [`Plan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanStage {
    /// Integer weighted sums.
    Linear(LinearStage),
    /// One programmable bootstrap per value.
    Lookup(LookupStage),
    /// One level of a max tree.
    Max(MaxStage),
}

impl PlanStage {
    /// The stage's name, for messages and reports.
    pub fn name(&self) -> &str {
        match self {
            PlanStage::Linear(l) => &l.name,
            PlanStage::Lookup(l) => &l.name,
            PlanStage::Max(m) => &m.name,
        }
    }

    /// The values the stage reads (0 the input, `k + 1` stage `k`'s output).
    pub fn inputs(&self) -> &[usize] {
        match self {
            PlanStage::Linear(l) => &l.inputs,
            PlanStage::Lookup(l) => std::slice::from_ref(&l.input),
            PlanStage::Max(m) => std::slice::from_ref(&m.input),
        }
    }

    /// `linear`, `lookup` or `max`.
    pub fn kind(&self) -> &'static str {
        match self {
            PlanStage::Linear(_) => "linear",
            PlanStage::Lookup(_) => "lookup",
            PlanStage::Max(_) => "max",
        }
    }

    /// Values the stage outputs.
    pub fn outputs(&self) -> usize {
        match self {
            PlanStage::Linear(l) => l.rows.rows(),
            PlanStage::Lookup(l) => l.table_of.len(),
            PlanStage::Max(m) => m.pairs.len(),
        }
    }
}

/// A model compiled for TFHE: the input quantisation, the stages on
/// ciphertexts and the output decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The tfhe-rs preset the plan is quantised and budgeted for.
    pub preset: Preset,
    /// The data owner's input quantisation and encryption.
    pub input: PlanInput,
    /// The stages, in order.
    pub stages: Vec<PlanStage>,
    /// How the data owner decodes the outputs.
    pub output: PlanOutput,
    /// The model's outputs, whose values the output holds concatenated in
    /// order, each with the operators (Softmax) the data owner applies
    /// after decryption.
    pub outputs: Vec<crate::graph::OutputTensor>,
}

impl Plan {
    /// The format version of a serialised plan (what a compiled model file
    /// holds): raised whenever the plan's types change. The schema test
    /// (`tests/plan_format.rs`) fails when they change without it. 2: the
    /// operators and activations of the graph compiler (`Select`,
    /// `Reduce`, `HardSigmoid`, `Gelu`, ...) in the post-processing ops. 3:
    /// a dataflow, every stage naming the values it reads. 4: several
    /// outputs, each with its own post-processing.
    pub const FORMAT_VERSION: u16 = 4;

    /// The key inputs are best encrypted under for `stages`: the small key
    /// when every value computed from the input by linear stages alone is
    /// read by lookups and such linear stages only (a bootstrap of a
    /// small-key value skips its keyswitch: one keyswitch saved per value,
    /// and less noise at its reads, the small key's fresh noise being far
    /// below the keyswitch's). Otherwise some input value reaches the
    /// output, a max tree or a sum with bootstrapped values without a
    /// bootstrap and must be under the big key.
    pub fn input_key(stages: &[PlanStage]) -> KeyChoice {
        match Self::small_key_values(stages) {
            Some(_) => KeyChoice::Small,
            None => KeyChoice::Big,
        }
    }

    /// Which values (0 the input, `k + 1` stage `k`) stay under the small
    /// key when the input is encrypted under it, or `None` when that input
    /// key cannot work (see [`Plan::input_key`]).
    pub fn small_key_values(stages: &[PlanStage]) -> Option<Vec<bool>> {
        let mut small = vec![true];
        for stage in stages {
            let read: Vec<bool> = stage.inputs().iter().map(|&v| small[v]).collect();
            let output_small = match stage {
                PlanStage::Linear(_) if read.iter().all(|&s| s) => true,
                PlanStage::Linear(_) if read.iter().any(|&s| s) => return None,
                PlanStage::Max(_) if read[0] => return None,
                _ => false,
            };
            small.push(output_small);
        }
        (!small[stages.len()]).then_some(small)
    }

    /// For each value (0 the input, `k + 1` stage `k`'s output), the last
    /// stage that reads it (`None`: none does, or it is the output), so an
    /// executor can free it after that stage.
    pub fn last_readers(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.stages.len() + 1];
        for (s, stage) in self.stages.iter().enumerate() {
            for &v in stage.inputs() {
                last[v] = Some(s);
            }
        }
        last[self.stages.len()] = None;
        last
    }

    /// Checks that every stage reads values computed before it, as many as
    /// its operation takes: what a plan read from a file must satisfy
    /// before it runs.
    pub fn check_wiring(&self) -> Result<(), String> {
        let mut lengths = vec![self.input.shape.iter().product::<usize>()];
        for (s, stage) in self.stages.iter().enumerate() {
            if let Some(&v) = stage.inputs().iter().find(|&&v| v > s) {
                return Err(format!(
                    "stage {s} ('{}') reads value {v}, which is not computed before it",
                    stage.name()
                ));
            }
            let read: usize = stage.inputs().iter().map(|&v| lengths[v]).sum();
            let takes = match stage {
                PlanStage::Linear(l) => l.rows.inputs,
                PlanStage::Lookup(l) => l.table_of.len(),
                PlanStage::Max(m) => {
                    let bound = m
                        .pairs
                        .iter()
                        .map(|&(a, b)| a.max(b.unwrap_or(0)) as usize + 1);
                    bound.max().unwrap_or(0).max(read)
                }
            };
            if stage.inputs().is_empty() || read != takes {
                return Err(format!(
                    "stage {s} ('{}') reads {read} value(s), its operation takes {takes}",
                    stage.name()
                ));
            }
            if let PlanStage::Lookup(l) = stage {
                if l.table_of.iter().any(|&t| t as usize >= l.tables.len()) {
                    return Err(format!(
                        "stage {s} ('{}'): a table index out of range",
                        l.name
                    ));
                }
            }
            lengths.push(stage.outputs());
        }
        let outputs = lengths[self.stages.len()];
        if outputs != self.output.values.len()
            || outputs != self.output.shape.iter().product::<usize>()
        {
            return Err(format!(
                "the last value has {outputs} values, the output {}",
                self.output.values.len()
            ));
        }
        Ok(())
    }

    /// Bootstraps per inference.
    pub fn bootstraps(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                PlanStage::Lookup(l) => l.table_of.len(),
                PlanStage::Max(m) => m.bootstraps(),
                PlanStage::Linear(_) => 0,
            })
            .sum()
    }

    /// Ciphertext multiply-adds per inference.
    pub fn multiply_adds(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                PlanStage::Linear(l) => l.rows.nonzeros(),
                PlanStage::Max(m) => 3 * m.bootstraps(),
                PlanStage::Lookup(_) => 0,
            })
            .sum()
    }
}

impl fmt::Display for PlanStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanStage::Linear(l) => {
                let max = l.rows.weights.iter().map(|w| w.unsigned_abs()).max();
                write!(
                    f,
                    "linear '{}': {} -> {} values, {} integer weights (|w| <= {})",
                    l.name,
                    l.rows.inputs,
                    l.rows.rows(),
                    l.rows.nonzeros(),
                    max.unwrap_or(0)
                )
            }
            PlanStage::Max(m) => write!(
                f,
                "max '{}': {} pairs of values in 0..{} ({} bootstraps of a + relu(b - a))",
                m.name,
                m.pairs.len(),
                m.count,
                m.bootstraps()
            ),
            PlanStage::Lookup(l) => write!(
                f,
                "lookup '{}': {} on {} values ({} tables, windows up to {} values = {:.1} bits), output {} levels",
                l.name,
                l.function,
                l.table_of.len(),
                l.tables.len(),
                l.widest_window(),
                (l.widest_window() as f64).log2(),
                l.output.levels
            ),
        }
    }
}
