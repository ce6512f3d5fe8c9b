//! Quantisation: from segments with real weights and calibrated ranges to a
//! [`Plan`] of integers, for given bit widths.
//!
//! - The input is quantised per tensor over its calibrated range.
//! - Each linear row gets its own scale (per-channel quantisation): the
//!   finest for which the row's accumulator spans at most the window of the
//!   bootstrap (or decryption) that reads it. The accumulator's range is
//!   either the worst case, by interval arithmetic over its inputs' windows
//!   (no value can wrap around the torus, whatever the input), or the range
//!   it took on the calibration samples widened by a margin (one of
//!   [`ACCUMULATOR_MARGINS`], chosen on held-out samples) where that is
//!   narrower ([`AccumulatorRanges`]: finer weights in wide
//!   sums, at the risk of a wrap for inputs far outside the calibration).
//! - Each lookup requantises its function's output per tensor over the
//!   calibrated output range (values beyond it saturate in the table).
//!
//! Values that meet in one sum must share an encoding (a residual Add adds
//! integers, not reals): linear segments and the values they read are
//! grouped into connected components, and every member of a component takes
//! the encoding its reader needs, the window of the lookup that reads the
//! component, else the output's. A lookup writing into a component thus
//! requantises its output to the common scale inside its own table, so the
//! sum costs no bootstrap of its own (Chillotti-Joye-Paillier, CSCML 2021,
//! requantise inside the programmable bootstrap).

use std::collections::HashMap;

use heman_model::io::dataset::Sample;
use heman_model::{CalibrationRanges, Graph, ValueId};
use heman_tfhe::{Encoding, InputWindow, IntegerRows, Preset, HALF_TORUS};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CompileError, Result};
use crate::graph::linear_map::AffineMap;
use crate::graph::OutputTensor;
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
    observed: Option<(f64, f64)>,
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
    if let (Some(range), None) = (observed, weight_bits) {
        if let Some(row) = calibrated_row(&effective, constant, range, spread, window) {
            return Ok(row);
        }
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

/// Shares of an accumulator's observed range added on each side when its
/// window is sized from calibration rather than the worst case: the
/// compilation takes the first by default and chooses among them by the
/// decisions they keep on held-out calibration samples (a narrow margin
/// gives finer weights, a wide one fewer wraps on inputs beyond the
/// calibration: which matters more depends on the model).
pub const ACCUMULATOR_MARGINS: [f64; 3] = [0.125, 0.25, 0.5];

/// The row sized from the range its real value took on the calibration
/// samples, widened by a margin ([`accumulator_ranges`]), where that is
/// narrower than the worst case over every input (`spread`): the finer
/// scale keeps weights that the worst-case bound rounds to zero in wide
/// sums (Concrete ML sizes its accumulators the same way, from calibration).
/// A value beyond the window wraps around the torus instead of saturating;
/// the quantised reference computes that wrap too, so the measured fidelity
/// counts it. The range is the real row's: the weights' rounding moves the
/// integer accumulator further (in a sum of hundreds of terms, by hundreds
/// of window values), which the margin covers only in part; the bit-width
/// search sees the wraps that remain in its simulations.
fn calibrated_row(
    effective: &[(u32, f64, u64)],
    constant: f64,
    (min, max): (f64, f64),
    spread: f64,
    window: u64,
) -> Option<QuantisedRow> {
    let (lo, hi) = (min, max);
    // Two integers of slack for the rounding of the weights and the bias.
    if window < 8 || hi.is_nan() || lo.is_nan() || hi <= lo || hi - lo >= spread {
        return None;
    }
    let scale = (hi - lo) / (window - 3) as f64;
    let terms: Vec<(u32, i64)> = effective
        .iter()
        .map(|&(i, e, _)| (i, (e / scale).round() as i64))
        .collect();
    let base = (constant / scale).round() as i64;
    let first = (lo / scale).floor() as i64;
    Some(QuantisedRow {
        terms,
        bias: base - first,
        offset: scale * first as f64 + (constant - scale * base as f64),
        count: window,
        scale,
    })
}

/// What bounds the rows of one linear segment.
struct RowBounds<'a> {
    /// Values each row's window holds at most.
    window: u64,
    /// Fixed weight bits instead of a window-derived scale.
    weight_bits: Option<u32>,
    /// The rows' calibrated ranges, where windows are sized from them.
    observed: Option<&'a ElementRanges>,
}

/// Quantises a linear segment over `input` (the concatenation of the plan
/// values `inputs`) within `bounds`.
fn quantise_linear(
    map: &AffineMap,
    input: &Quantisation,
    bounds: RowBounds,
    name: &str,
    encoding: Encoding,
    inputs: Vec<usize>,
) -> Result<(LinearStage, Quantisation)> {
    let RowBounds {
        window,
        weight_bits,
        observed,
    } = bounds;
    let rows = map.by_rows();
    let quantised: Vec<QuantisedRow> = rows
        .par_iter()
        .zip(&map.bias)
        .enumerate()
        .map(|(j, (row, &bias))| {
            let range = observed.map(|r| (r.min[j], r.max[j]));
            quantise_row(row, bias, input, window, weight_bits, range).map_err(|message| {
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
            inputs,
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
    (source, input): (usize, &Quantisation),
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
        input: source,
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
    (input, first, encoding): (usize, usize, Encoding),
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
            // Each level reads the one before it (stage `first + j - 1`
            // writes value `first + j`), the first the tree's input.
            input: if levels.is_empty() {
                input
            } else {
                first + levels.len()
            },
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

/// The smallest and largest value each element of a tensor took.
#[derive(Debug, Clone)]
pub struct ElementRanges {
    /// Per element: the smallest value seen.
    pub min: Vec<f64>,
    /// Per element: the largest value seen.
    pub max: Vec<f64>,
}

/// The per-element ranges of every linear segment's output on calibration
/// samples, widened by a margin: what sizes their accumulators' windows.
pub type AccumulatorRanges = HashMap<ValueId, ElementRanges>;

/// Measures [`AccumulatorRanges`] of `segments` on `samples`, each range
/// widened by `margin` times its width on each side (see
/// [`ACCUMULATOR_MARGINS`]).
pub fn accumulator_ranges(
    graph: &Graph,
    segments: &[Segment],
    samples: &[Sample],
    margin: f64,
) -> Result<AccumulatorRanges> {
    let wanted: Vec<ValueId> = segments
        .iter()
        .filter(|s| s.is_linear())
        .map(|s| s.output)
        .collect();
    let mut ranges = AccumulatorRanges::new();
    for sample in samples {
        let x = graph.check_input(0, &sample.tensor)?;
        graph.run_observed(std::slice::from_ref(&x), |id, t| {
            if !wanted.contains(&id) {
                return;
            }
            let r = ranges.entry(id).or_insert_with(|| ElementRanges {
                min: vec![f64::INFINITY; t.len()],
                max: vec![f64::NEG_INFINITY; t.len()],
            });
            for ((lo, hi), &v) in r.min.iter_mut().zip(r.max.iter_mut()).zip(t.data()) {
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
        })?;
    }
    for r in ranges.values_mut() {
        for (lo, hi) in r.min.iter_mut().zip(r.max.iter_mut()) {
            let widen = (*hi - *lo) * margin;
            (*lo, *hi) = (*lo - widen, *hi + widen);
        }
    }
    Ok(ranges)
}

/// The plan of `segments` (the dataflow of `graph`) at `bits`.
pub fn build_plan(
    graph: &Graph,
    segments: &[Segment],
    ranges: &CalibrationRanges,
    preset: Preset,
    bits: Bits,
    accumulators: Option<&AccumulatorRanges>,
    outputs: Vec<OutputTensor>,
) -> Result<Plan> {
    let builder = Builder {
        graph,
        ranges,
        preset,
        bits,
        accumulators,
        encodings: Encodings::new(segments, preset, bits),
    };
    let input_id = graph.inputs[0];
    let input_shape = graph.shape(input_id).to_vec();
    let input_range = calibrated(graph, ranges, input_id, "input")?;
    let input_levels = 1u64 << bits.input;
    let input_quant = levels_over(input_range, input_levels);
    let volume: usize = input_shape.iter().product();
    // Per plan value (0 the input, `s + 1` stage `s`): what it stands for.
    let mut values = vec![Quantisation {
        scale: vec![input_quant.scale; volume],
        offset: vec![input_quant.offset; volume],
        count: vec![input_levels; volume],
    }];
    // Per segment value: the plan value that holds it.
    let mut plan_value = vec![0];
    let mut stages = Vec::with_capacity(segments.len());
    for (k, segment) in segments.iter().enumerate() {
        let inputs: Vec<usize> = segment.sources.iter().map(|&s| plan_value[s]).collect();
        let out = builder.segment(k, segment, inputs, &mut values, &mut stages)?;
        values.push(out);
        plan_value.push(stages.len());
    }
    let last = values.pop().expect("the input's quantisation");
    Ok(Plan {
        preset,
        input: PlanInput {
            shape: input_shape,
            scale: input_quant.scale,
            offset: input_quant.offset,
            levels: input_levels,
            encoding: builder.encodings.of[0],
            key: Plan::input_key(&stages),
        },
        stages,
        output: PlanOutput {
            shape: graph.shape(graph.outputs[0]).to_vec(),
            encoding: builder.encodings.of[segments.len()],
            values: last,
        },
        outputs,
    })
}

/// What every segment of one [`build_plan`] is quantised with.
struct Builder<'a> {
    graph: &'a Graph,
    ranges: &'a CalibrationRanges,
    preset: Preset,
    bits: Bits,
    accumulators: Option<&'a AccumulatorRanges>,
    encodings: Encodings,
}

impl Builder<'_> {
    /// Quantises segment `k`, which reads the plan values `inputs`: pushes
    /// its stages (a max tree has several; their intermediate levels get
    /// placeholder entries in `values`) and returns its output's
    /// quantisation.
    fn segment(
        &self,
        k: usize,
        segment: &Segment,
        inputs: Vec<usize>,
        values: &mut Vec<Quantisation>,
        stages: &mut Vec<PlanStage>,
    ) -> Result<Quantisation> {
        let encoding = self.encodings.of[k + 1];
        let out = match &segment.kind {
            SegmentKind::Linear(maps) => {
                let read = concatenate(inputs.iter().map(|&v| &values[v]));
                let target = self.encodings.targets[k + 1];
                let bounds = RowBounds {
                    window: target.unwrap_or(u64::MAX),
                    // Rows read by linear segments only have no window of
                    // their own: fixed weight bits, the sum they end in fits.
                    weight_bits: match target {
                        Some(_) => self.bits.weights,
                        None => Some(self.bits.intermediate),
                    },
                    observed: self.accumulators.and_then(|a| a.get(&segment.output)),
                };
                let map = AffineMap::concatenate(maps);
                let (stage, out) =
                    quantise_linear(&map, &read, bounds, &segment.name, encoding, inputs)?;
                stages.push(PlanStage::Linear(stage));
                out
            }
            SegmentKind::Lookup(function) => {
                let output_range =
                    calibrated(self.graph, self.ranges, segment.output, &segment.name)?;
                let (stage, out) = quantise_lookup(
                    self.preset,
                    function,
                    (inputs[0], &values[inputs[0]]),
                    self.encodings.of[segment.sources[0]],
                    output_range,
                    self.encodings.activation_levels,
                    encoding,
                    &segment.name,
                )?;
                stages.push(PlanStage::Lookup(stage));
                out
            }
            SegmentKind::Max(windows) => {
                let (levels, out) = lower_max(
                    windows,
                    (inputs[0], &values[inputs[0]]),
                    (stages.len(), encoding),
                    &segment.name,
                )?;
                for level in levels {
                    // Intermediate levels' values are not tracked: only the
                    // next level reads them.
                    values.push(Quantisation::default());
                    stages.push(PlanStage::Max(level));
                }
                values.pop();
                out
            }
        };
        Ok(out)
    }
}

/// The quantisations of several vectors as one of their concatenation.
fn concatenate<'a>(parts: impl Iterator<Item = &'a Quantisation>) -> Quantisation {
    let mut out = Quantisation::default();
    for q in parts {
        out.scale.extend_from_slice(&q.scale);
        out.offset.extend_from_slice(&q.offset);
        out.count.extend_from_slice(&q.count);
    }
    out
}

/// The torus encoding of every value of a segment dataflow, and the window
/// each linear segment's rows are fitted in.
///
/// A linear stage computes at its inputs' encoding, so each set of values
/// linked by linear segments (a component) shares one. It is the bootstrap
/// window's when a lookup reads any of them, else the output window's; a
/// value linked to no linear segment (the input, a lookup's output) is
/// encoded for its own reader: the finest a bootstrap reads its levels at,
/// a max tree's difference window, or the output. A max tree computes at
/// its input's encoding.
struct Encodings {
    /// Per segment value (0 the input, `k + 1` segment `k`): its encoding.
    of: Vec<Encoding>,
    /// Per linear segment's value: the window its rows are fitted in
    /// (`None`: read by linear segments only).
    targets: Vec<Option<u64>>,
    /// Levels of an activation's output.
    activation_levels: u64,
}

impl Encodings {
    fn new(segments: &[Segment], preset: Preset, bits: Bits) -> Self {
        let n = segments.len() + 1;
        let mut component: Vec<usize> = (0..n).collect();
        fn root(component: &mut [usize], mut v: usize) -> usize {
            while component[v] != v {
                component[v] = component[component[v]];
                v = component[v];
            }
            v
        }
        let (mut read_by_lookup, mut read_by_max) = (vec![false; n], vec![false; n]);
        for (k, segment) in segments.iter().enumerate() {
            for &s in &segment.sources {
                match segment.kind {
                    SegmentKind::Linear(_) => {
                        let (a, b) = (root(&mut component, s), root(&mut component, k + 1));
                        component[a] = b;
                    }
                    SegmentKind::Lookup(_) => read_by_lookup[s] = true,
                    SegmentKind::Max(_) => read_by_max[s] = true,
                }
            }
        }
        let roots: Vec<usize> = (0..n).map(|v| root(&mut component, v)).collect();
        let (mut linked, mut bootstrapped) = (vec![false; n], vec![false; n]);
        for v in 0..n {
            let linear = v > 0 && segments[v - 1].is_linear();
            linked[roots[v]] |= linear;
            bootstrapped[roots[v]] |= read_by_lookup[v];
        }
        let window = 1u64 << bits.window;
        let output_window = 1u64 << bits.output;
        let activation_levels = 1u64 << bits.activation;
        let window_encoding = InputWindow::finest(preset, window, 1).encoding;
        let mut of: Vec<Encoding> = Vec::with_capacity(n);
        let mut targets = vec![None; n];
        for v in 0..n {
            let r = roots[v];
            let segment = v.checked_sub(1).map(|k| &segments[k]);
            let encoding = match segment.map(|s| &s.kind) {
                Some(SegmentKind::Max(_)) => of[segment.expect("a segment").sources[0]],
                _ if linked[r] && bootstrapped[r] => window_encoding,
                _ if linked[r] => Encoding::fitting(output_window, HALF_TORUS),
                _ => {
                    let count = if v == 0 {
                        1u64 << bits.input
                    } else {
                        activation_levels
                    };
                    if read_by_max[v] {
                        InputWindow::finest(preset, 2 * count - 1, 1).encoding
                    } else if read_by_lookup[v] {
                        InputWindow::finest(preset, count, 1).encoding
                    } else {
                        Encoding::fitting(count, HALF_TORUS)
                    }
                }
            };
            of.push(encoding);
            if segment.is_some_and(Segment::is_linear) {
                targets[v] = if read_by_lookup[v] || (v == n - 1 && bootstrapped[r]) {
                    Some(window)
                } else if v == n - 1 {
                    Some(output_window)
                } else {
                    None
                };
            }
        }
        Self {
            of,
            targets,
            activation_levels,
        }
    }
}

/// A max pool as a tree of pairwise maxima over values of one quantisation
/// (plan value `input`): its levels and the quantisation of its outputs.
fn lower_max(
    windows: &[Vec<u32>],
    (input, values): (usize, &Quantisation),
    (first, encoding): (usize, Encoding),
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
    let (levels, outputs) = max_tree(windows, name, (input, first, encoding), count);
    Ok((
        levels,
        Quantisation {
            scale: vec![values.scale[0]; outputs],
            offset: vec![values.offset[0]; outputs],
            count: vec![count; outputs],
        },
    ))
}
