//! The compiled model for the TFHE backend: the input quantisation the
//! data owner applies, linear stages (integer weights, the model owner's
//! secret), lookup stages (one bootstrap per value) and the output decoding.
//!
//! Every vector of ciphertexts carries integers `u` in a window `0..count`;
//! the real value they stand for is `offset + scale * u`.

use std::fmt;

use heman_model::ops::Op;
use heman_tfhe::{Encoding, InputWindow, IntegerRows, KeyChoice, Preset};
use serde::{Deserialize, Serialize};

use crate::tfhe::function::Expression;

/// What a vector's integers stand for: `offset[i] + scale[i] * u[i]` with
/// `u[i]` in `0..count[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantisation {
    pub scale: Vec<f64>,
    pub offset: Vec<f64>,
    pub count: Vec<u64>,
}

impl Quantisation {
    pub fn len(&self) -> usize {
        self.count.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count.is_empty()
    }

    pub fn real(&self, i: usize, u: f64) -> f64 {
        self.offset[i] + self.scale[i] * u
    }
}

/// The data owner's input quantisation: `u = round((x - offset) / scale)`
/// clamped to `0..levels`, encrypted at `encoding` under `key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfheInput {
    pub shape: Vec<usize>,
    pub scale: f64,
    pub offset: f64,
    pub levels: u64,
    pub encoding: Encoding,
    /// The small key where every input value reaches a bootstrap through
    /// linear stages only (see [`TfhePlan::input_key`]).
    #[serde(default)]
    pub key: KeyChoice,
}

impl TfheInput {
    pub fn quantise(&self, x: f64) -> u64 {
        ((x - self.offset) / self.scale)
            .round()
            .clamp(0.0, (self.levels - 1) as f64) as u64
    }

    pub fn bits(&self) -> f64 {
        (self.levels as f64).log2()
    }
}

/// How the data owner reads the output: decode each phase at `encoding`,
/// clamp to the window, map through `values`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfheOutput {
    pub shape: Vec<usize>,
    pub encoding: Encoding,
    pub values: Quantisation,
}

impl TfheOutput {
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
    pub name: String,
    pub rows: IntegerRows,
    pub encoding: Encoding,
}

/// The input window of one lookup table: `count` integers standing for the
/// accumulator values `offset + scale * u`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInput {
    pub count: u64,
    pub scale: f64,
    pub offset: f64,
}

/// The output levels of a lookup stage: `offset + scale * y`, `y` in `0..levels`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    pub scale: f64,
    pub offset: f64,
    pub levels: u64,
}

impl Levels {
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
    pub name: String,
    pub function: Expression,
    pub input_encoding: Encoding,
    pub tables: Vec<TableInput>,
    pub table_of: Vec<u32>,
    pub output: Levels,
    pub output_encoding: Encoding,
}

impl LookupStage {
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
    pub name: String,
    pub pairs: Vec<(u32, Option<u32>)>,
    pub encoding: Encoding,
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

    pub fn bootstraps(&self) -> usize {
        self.pairs.iter().filter(|p| p.1.is_some()).count()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TfheStage {
    Linear(LinearStage),
    Lookup(LookupStage),
    Max(MaxStage),
}

impl TfheStage {
    pub fn name(&self) -> &str {
        match self {
            TfheStage::Linear(l) => &l.name,
            TfheStage::Lookup(l) => &l.name,
            TfheStage::Max(m) => &m.name,
        }
    }

    /// Values the stage outputs.
    pub fn outputs(&self) -> usize {
        match self {
            TfheStage::Linear(l) => l.rows.rows(),
            TfheStage::Lookup(l) => l.table_of.len(),
            TfheStage::Max(m) => m.pairs.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfhePlan {
    pub preset: Preset,
    pub input: TfheInput,
    pub stages: Vec<TfheStage>,
    pub output: TfheOutput,
    /// Weightless trailing operators (Softmax) the data owner applies.
    pub postprocess: Vec<Op>,
}

impl TfhePlan {
    /// The format version of a serialised plan (what a compiled model file
    /// holds): raised whenever the plan's types change. The schema test
    /// (`tests/plan_format.rs`) fails when they change without it.
    pub const FORMAT_VERSION: u16 = 1;

    /// The key inputs are best encrypted under for `stages`: the small key
    /// when the first stage that is not linear is a lookup, which
    /// bootstraps every value (linear stages keep their inputs' key, and a
    /// bootstrap of a small-key value skips its keyswitch: one keyswitch
    /// saved per value of that lookup, and less noise at its reads, the
    /// small key's fresh noise being far below the keyswitch's). Otherwise
    /// some input value reaches the output or a max tree's carried value
    /// without a bootstrap and must be under the big key.
    pub fn input_key(stages: &[TfheStage]) -> KeyChoice {
        match stages.iter().find(|s| !matches!(s, TfheStage::Linear(_))) {
            Some(TfheStage::Lookup(_)) => KeyChoice::Small,
            _ => KeyChoice::Big,
        }
    }

    /// Bootstraps per inference.
    pub fn bootstraps(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                TfheStage::Lookup(l) => l.table_of.len(),
                TfheStage::Max(m) => m.bootstraps(),
                TfheStage::Linear(_) => 0,
            })
            .sum()
    }

    /// Ciphertext multiply-adds per inference.
    pub fn multiply_adds(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                TfheStage::Linear(l) => l.rows.nonzeros(),
                TfheStage::Max(m) => 3 * m.bootstraps(),
                TfheStage::Lookup(_) => 0,
            })
            .sum()
    }
}

impl fmt::Display for TfheStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TfheStage::Linear(l) => {
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
            TfheStage::Max(m) => write!(
                f,
                "max '{}': {} pairs of values in 0..{} ({} bootstraps of a + relu(b - a))",
                m.name,
                m.pairs.len(),
                m.count,
                m.bootstraps()
            ),
            TfheStage::Lookup(l) => write!(
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
