//! Quantisation: from segments with real weights and calibrated ranges to a
//! [`Plan`] of integers, for given bit widths.
//!
//! - The input is quantised per tensor over its calibrated range.
//! - Each linear row gets its own scale (per-channel quantisation): the
//!   finest for which the row's accumulator, bounded by interval arithmetic
//!   over its inputs' windows, spans at most the window of the bootstrap (or
//!   decryption) that reads it. The bound is worst case, so no value can
//!   wrap around the torus, whatever the input.
//! - Each lookup requantises its function's output per tensor over the
//!   calibrated output range (values beyond it saturate in the table).
//!
//! Runs of linear segments between bootstraps share one encoding: the one
//! their reader's window needs.

use std::collections::HashMap;

use heman_model::ops::Op;
use heman_model::{CalibrationRanges, Graph};
use heman_tfhe::{Encoding, InputWindow, IntegerRows, Preset, HALF_TORUS};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};
use crate::graph::linear_map::AffineMap;
use crate::tfhe::function::Expression;
use crate::tfhe::plan::{
    Levels, LinearStage, LookupStage, MaxStage, Plan, PlanInput, PlanOutput, PlanStage,
    Quantisation, TableInput,
};
use crate::tfhe::segments::{Segment, SegmentKind};

/// The bit widths a plan is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bits {
    /// Input levels: 2^input.
    pub input: u32,
    /// Output levels of every lookup: 2^activation.
    pub activation: u32,
    /// Values a bootstrap's input window holds: 2^window.
    pub window: u32,
    /// Values the decrypted output window holds: 2^output.
    pub output: u32,
    /// Weight bits of linear segments read by another linear segment (no
    /// window bounds them: the last segment of the run absorbs their range).
    pub intermediate: u32,
    /// Fixed symmetric weight quantisation (`None`: derived from the windows).
    pub weights: Option<u32>,
}

/// Who reads the values a segment outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    Linear,
    Bootstrap,
    Max,
    Output,
}

/// The integers of one linear row and the window they land in.
struct QuantisedRow {
    terms: Vec<(u32, i64)>,
    bias: i64,
    scale: f64,
    offset: f64,
    count: u64,
}

/// Quantises row `index` (real weights `row`, real `bias`) over inputs
/// `input` into a window of at most `window` values.
fn quantise_row(
    row: &[(u32, f64)],
    bias: f64,
    input: &Quantisation,
    window: u64,
    weight_bits: Option<u32>,
) -> std::result::Result<QuantisedRow, String> {
    // Weights on the input integers, and the constant the offsets add.
    let effective: Vec<(u32, f64, u64)> = row
        .iter()
        .map(|&(i, w)| (i, w * input.scale[i as usize], input.count[i as usize] - 1))
        .collect();
    let constant = bias
        + row
            .iter()
            .map(|&(i, w)| w * input.offset[i as usize])
            .sum::<f64>();
    let spread: f64 = effective.iter().map(|&(_, e, c)| e.abs() * c as f64).sum();
    if spread == 0.0 {
        return Ok(QuantisedRow {
            terms: Vec::new(),
            bias: 0,
            scale: 1.0,
            offset: constant,
            count: 1,
        });
    }
    let mut scale = match weight_bits {
        Some(bits) => {
            let max = effective
                .iter()
                .fold(0.0f64, |m, &(_, e, _)| m.max(e.abs()));
            max / ((1i64 << (bits - 1)) - 1).max(1) as f64
        }
        None => spread / (window.max(2) - 1) as f64,
    };
    for _ in 0..200 {
        let terms: Vec<(u32, i64)> = effective
            .iter()
            .map(|&(i, e, _)| (i, (e / scale).round() as i64))
            .collect();
        let base = (constant / scale).round() as i64;
        let (mut lo, mut hi) = (base as i128, base as i128);
        for (&(_, w), &(_, _, c)) in terms.iter().zip(&effective) {
            let reach = w as i128 * c as i128;
            if reach < 0 {
                lo += reach;
            } else {
                hi += reach;
            }
        }
        let range = hi - lo;
        if range < window as i128 {
            return Ok(QuantisedRow {
                bias: (base as i128 - lo) as i64,
                // The constant's rounding residue stays exact in the offset.
                offset: scale * lo as f64 + (constant - scale * base as f64),
                count: range as u64 + 1,
                scale,
                terms,
            });
        }
        if weight_bits.is_some() {
            return Err(format!(
                "its accumulator spans [{lo}, {hi}] ({} values) with {}-bit weights, more than the window of {window} values",
                range + 1,
                weight_bits.unwrap_or(0)
            ));
        }
        scale *= (range as f64 / (window - 1) as f64).max(1.0 + 1e-9);
    }
    Err(format!(
        "no weight scale fits its accumulator in {window} values"
    ))
}

/// Quantises a linear segment over `input`; every row's window holds at
/// most `window` values.
fn quantise_linear(
    map: &AffineMap,
    input: &Quantisation,
    window: u64,
    weight_bits: Option<u32>,
    name: &str,
    encoding: Encoding,
) -> Result<(LinearStage, Quantisation)> {
    let rows = map.by_rows();
    let quantised: Vec<QuantisedRow> = rows
        .par_iter()
        .zip(&map.bias)
        .enumerate()
        .map(|(j, (row, &bias))| {
            quantise_row(row, bias, input, window, weight_bits).map_err(|message| {
                CompileError::Budget {
                    node: name.to_string(),
                    message: format!("output {j}: {message}"),
                }
            })
        })
        .collect::<Result<_>>()?;
    let mut integer_rows = IntegerRows::new(map.cols);
    let mut out = Quantisation {
        scale: Vec::with_capacity(map.rows),
        offset: Vec::with_capacity(map.rows),
        count: Vec::with_capacity(map.rows),
    };
    for row in quantised {
        integer_rows.push_row(row.terms, row.bias);
        out.scale.push(row.scale);
        out.offset.push(row.offset);
        out.count.push(row.count);
    }
    Ok((
        LinearStage {
            name: name.to_string(),
            rows: integer_rows,
            encoding,
        },
        out,
    ))
}

fn calibrated(
    graph: &Graph,
    ranges: &CalibrationRanges,
    id: usize,
    node: &str,
) -> Result<(f64, f64)> {
    let name = &graph.value(id).name;
    let range = ranges.get(name).ok_or_else(|| CompileError::Budget {
        node: node.to_string(),
        message: format!("no calibrated range for '{name}'"),
    })?;
    Ok((range.min, range.max))
}

/// `levels` levels over `[min, max]`.
fn levels_over((min, max): (f64, f64), levels: u64) -> Levels {
    let width = max - min;
    Levels {
        scale: if width > 0.0 {
            width / (levels - 1).max(1) as f64
        } else {
            1.0
        },
        offset: min,
        levels,
    }
}

/// Builds the lookup stage of `function` over `input` (at `input_encoding`).
#[allow(clippy::too_many_arguments)]
fn quantise_lookup(
    preset: Preset,
    function: &Expression,
    input: &Quantisation,
    input_encoding: Encoding,
    output_range: (f64, f64),
    levels: u64,
    output_encoding: Encoding,
    name: &str,
) -> Result<(LookupStage, Quantisation)> {
    let mut tables = Vec::new();
    let mut index: HashMap<(u64, u64, u64), u32> = HashMap::new();
    let mut table_of = Vec::with_capacity(input.len());
    for i in 0..input.len() {
        let key = (
            input.count[i],
            input.scale[i].to_bits(),
            input.offset[i].to_bits(),
        );
        let t = *index.entry(key).or_insert_with(|| {
            tables.push(TableInput {
                count: input.count[i],
                scale: input.scale[i],
                offset: input.offset[i],
            });
            tables.len() as u32 - 1
        });
        table_of.push(t);
    }
    let stage = LookupStage {
        name: name.to_string(),
        function: function.clone(),
        input_encoding,
        tables,
        table_of,
        output: levels_over(output_range, levels),
        output_encoding,
    };
    for t in 0..stage.tables.len() {
        stage
            .window(t)
            .read(preset, 1, 0)
            .map_err(|e| CompileError::Budget {
                node: name.to_string(),
                message: format!("bootstrap input window: {e}"),
            })?;
    }
    let out = Quantisation {
        scale: vec![stage.output.scale; input.len()],
        offset: vec![stage.output.offset; input.len()],
        count: vec![levels; input.len()],
    };
    Ok((stage, out))
}

/// The levels of a pairwise max tree over `windows` (indices into the
/// input), and the number of outputs (one per window).
fn max_tree(
    windows: &[Vec<u32>],
    name: &str,
    encoding: Encoding,
    count: u64,
) -> (Vec<MaxStage>, usize) {
    let mut current: Vec<Vec<u32>> = windows.to_vec();
    let mut levels = Vec::new();
    loop {
        let mut pairs = Vec::new();
        let next: Vec<Vec<u32>> = current
            .iter()
            .map(|window| {
                window
                    .chunks(2)
                    .map(|chunk| {
                        pairs.push((chunk[0], chunk.get(1).copied()));
                        pairs.len() as u32 - 1
                    })
                    .collect()
            })
            .collect();
        levels.push(MaxStage {
            name: format!("{name} (level {})", levels.len() + 1),
            pairs,
            encoding,
            count,
        });
        if next.iter().all(|w| w.len() <= 1) {
            return (levels, windows.len());
        }
        current = next;
    }
}

/// The plan of `segments` (of the single-chain `graph`) at `bits`.
pub fn build_plan(
    graph: &Graph,
    segments: &[Segment],
    ranges: &CalibrationRanges,
    preset: Preset,
    bits: Bits,
    postprocess: Vec<Op>,
) -> Result<Plan> {
    let encodings = Encodings::new(segments, preset, bits);
    let input_id = graph.inputs[0];
    let input_shape = graph.shape(input_id).to_vec();
    let input_range = calibrated(graph, ranges, input_id, "input")?;
    let input_levels = 1u64 << bits.input;
    let input_quant = levels_over(input_range, input_levels);
    let input_encoding = match segments.first().map(|s| &s.kind) {
        Some(SegmentKind::Lookup(_)) => InputWindow::finest(preset, input_levels, 1).encoding,
        Some(SegmentKind::Max(_)) => encodings.max(input_levels),
        Some(SegmentKind::Linear(_)) => encodings.run(0),
        None => Encoding::fitting(input_levels, HALF_TORUS),
    };
    let volume: usize = input_shape.iter().product();
    let mut values = Quantisation {
        scale: vec![input_quant.scale; volume],
        offset: vec![input_quant.offset; volume],
        count: vec![input_levels; volume],
    };
    let mut encoding = input_encoding;
    let mut stages = Vec::with_capacity(segments.len());
    for (k, segment) in segments.iter().enumerate() {
        match &segment.kind {
            SegmentKind::Linear(map) => {
                // Rows read by a linear segment have no window of their
                // own: fixed weight bits, the run's last segment fits the sum.
                let (target, weight_bits) = match encodings.readers[k] {
                    Reader::Linear => (u64::MAX, Some(bits.intermediate)),
                    // (A max always reads a lookup's output: segments() puts
                    // one in between.)
                    Reader::Bootstrap | Reader::Max => (encodings.window, bits.weights),
                    Reader::Output => (encodings.output_window, bits.weights),
                };
                let (stage, out) =
                    quantise_linear(map, &values, target, weight_bits, &segment.name, encoding)?;
                stages.push(PlanStage::Linear(stage));
                values = out;
            }
            SegmentKind::Lookup(function) => {
                let output_range = calibrated(graph, ranges, segment.output, &segment.name)?;
                let out_encoding = encodings.lookup_output(k);
                let (stage, out) = quantise_lookup(
                    preset,
                    function,
                    &values,
                    encoding,
                    output_range,
                    encodings.activation_levels,
                    out_encoding,
                    &segment.name,
                )?;
                stages.push(PlanStage::Lookup(stage));
                values = out;
                encoding = out_encoding;
            }
            SegmentKind::Max(windows) => {
                let (levels, out) = lower_max(windows, &values, encoding, &segment.name)?;
                stages.extend(levels.into_iter().map(PlanStage::Max));
                values = out;
            }
        }
    }
    let output_id = graph.outputs[0];
    Ok(Plan {
        preset,
        input: PlanInput {
            shape: input_shape,
            scale: input_quant.scale,
            offset: input_quant.offset,
            levels: input_levels,
            encoding: input_encoding,
            key: Plan::input_key(&stages),
        },
        stages,
        output: PlanOutput {
            shape: graph.shape(output_id).to_vec(),
            encoding,
            values,
        },
        postprocess,
    })
}

/// The torus encodings of a plan's values, by who reads them.
struct Encodings {
    preset: Preset,
    /// Who reads each segment's output.
    readers: Vec<Reader>,
    /// Values in a bootstrap's window.
    window: u64,
    /// Values in the output window.
    output_window: u64,
    /// Levels of an activation's output.
    activation_levels: u64,
    window_encoding: Encoding,
    output_encoding: Encoding,
}

impl Encodings {
    fn new(segments: &[Segment], preset: Preset, bits: Bits) -> Self {
        let readers = (0..segments.len())
            .map(|k| match segments.get(k + 1).map(|s| &s.kind) {
                Some(SegmentKind::Linear(_)) => Reader::Linear,
                Some(SegmentKind::Lookup(_)) => Reader::Bootstrap,
                Some(SegmentKind::Max(_)) => Reader::Max,
                None => Reader::Output,
            })
            .collect();
        let window = 1u64 << bits.window;
        let output_window = 1u64 << bits.output;
        Self {
            preset,
            readers,
            window,
            output_window,
            activation_levels: 1u64 << bits.activation,
            window_encoding: InputWindow::finest(preset, window, 1).encoding,
            output_encoding: Encoding::fitting(output_window, HALF_TORUS),
        }
    }

    /// A run of linear segments ends at the first one a bootstrap or the
    /// output reads; the whole run from segment `k` computes at its
    /// reader's encoding.
    fn run(&self, k: usize) -> Encoding {
        let end = (k..self.readers.len())
            .find(|&j| self.readers[j] != Reader::Linear)
            .map_or(Reader::Output, |j| self.readers[j]);
        match end {
            Reader::Bootstrap => self.window_encoding,
            _ => self.output_encoding,
        }
    }

    /// A max tree reads differences of values in 0..count: 2 count - 1 values.
    fn max(&self, count: u64) -> Encoding {
        InputWindow::finest(self.preset, 2 * count - 1, 1).encoding
    }

    /// The encoding lookup segment `k` writes its outputs at.
    fn lookup_output(&self, k: usize) -> Encoding {
        let levels = self.activation_levels;
        match self.readers[k] {
            Reader::Linear => self.run(k + 1),
            Reader::Max => self.max(levels),
            Reader::Bootstrap => InputWindow::finest(self.preset, levels, 1).encoding,
            Reader::Output => Encoding::fitting(levels, HALF_TORUS),
        }
    }
}

/// A max pool as a tree of pairwise maxima over values of one quantisation:
/// its levels and the quantisation of its outputs.
fn lower_max(
    windows: &[Vec<u32>],
    values: &Quantisation,
    encoding: Encoding,
    name: &str,
) -> Result<(Vec<MaxStage>, Quantisation)> {
    let uniform = !values.is_empty()
        && (1..values.len()).all(|i| {
            values.count[i] == values.count[0]
                && values.scale[i] == values.scale[0]
                && values.offset[i] == values.offset[0]
        });
    if !uniform {
        return Err(CompileError::Budget {
            node: name.to_string(),
            message: "a max tree needs inputs of one quantisation".into(),
        });
    }
    let count = values.count[0];
    let (levels, outputs) = max_tree(windows, name, encoding, count);
    Ok((
        levels,
        Quantisation {
            scale: vec![values.scale[0]; outputs],
            offset: vec![values.offset[0]; outputs],
            count: vec![count; outputs],
        },
    ))
}
