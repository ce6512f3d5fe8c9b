//! Lowering of an affine map between two slot layouts to diagonal
//! matrix-vector products (Halevi-Shoup 2014: `y = sum_d diag_d * rot(x, d)`),
//! evaluated baby-step giant-step with hoisted baby rotations (Halevi-Shoup
//! 2018; Bossuat et al. 2021), over the nonzero diagonals only.
//!
//! Two forms:
//! - **direct**: output positions anywhere (e.g. a convolution's output kept
//!   on the input's grid, gaps and all, so that its diagonals are the few
//!   kernel offsets; Lee et al. 2022 multiplexed convolutions use the idea);
//! - **rotate-and-sum** (Juvekar et al. 2018, Gazelle's hybrid method): the
//!   `m` outputs land at every slot `= o mod m`: `m` diagonals, then
//!   `log2(T/m)` rotations summing the partial products of the input period
//!   `T`. Best for dense layers with few outputs.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::ckks::layout::SlotLayout;
use crate::ckks::window_sum;
use crate::graph::linear_map::AffineMap;

/// One generalized diagonal: slot -> weight (zero elsewhere).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagonal {
    /// Nonzero (slot, weight) pairs.
    pub entries: Vec<(u32, f64)>,
}

impl Diagonal {
    /// The dense slot vector.
    pub fn to_dense(&self, slots: usize) -> Vec<f64> {
        let mut v = vec![0.0; slots];
        for &(s, w) in &self.entries {
            v[s as usize] = w;
        }
        v
    }
}

/// `out += sum_g rot(sum_b diag'_{g,b} * rot(in, b), g)`: one block of a
/// baby-step giant-step product, reading input ciphertext `input` and adding
/// into output ciphertext `output`. The diagonals are stored pre-rotated by
/// `-g` so that one rotation per giant step suffices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagonalMatVec {
    /// Index of the input ciphertext read.
    pub input: usize,
    /// Index of the output ciphertext added into.
    pub output: usize,
    /// Baby rotation steps of the input (one hoisted decomposition).
    pub baby_steps: Vec<usize>,
    /// Giant step `g` with its `(baby step, pre-rotated diagonal)` terms.
    pub giant_steps: Vec<(usize, Vec<(usize, Diagonal)>)>,
}

impl DiagonalMatVec {
    /// Number of diagonals (plaintext products).
    pub fn diagonal_count(&self) -> usize {
        self.giant_steps.iter().map(|(_, terms)| terms.len()).sum()
    }

    /// The rotations that sum the giant steps Horner-style, smallest giant
    /// last: the gaps between consecutive giant steps, then the smallest.
    pub fn giant_gaps(&self) -> Vec<usize> {
        let giants: Vec<usize> = self.giant_steps.iter().map(|(g, _)| *g).collect();
        let mut gaps: Vec<usize> = giants.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.extend(giants.first().copied());
        gaps
    }

    /// Nonzero baby and giant rotations the block performs.
    pub fn rotation_count(&self) -> usize {
        self.baby_steps.iter().filter(|&&b| b != 0).count()
            + self.giant_steps.iter().filter(|(g, _)| *g != 0).count()
    }
}

/// A lowered affine stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearTransform {
    /// Rounds applied to every input ciphertext before the diagonals, each
    /// replacing `x` by `x + sum_s rot(x, s)`: the window sums of a pool
    /// factored out of the map ([`crate::ckks::window_sum`]). Rotations and
    /// additions only: no level.
    #[serde(default)]
    pub window_sums: Vec<Vec<usize>>,
    /// Ciphertexts the stage reads.
    pub input_ciphertexts: usize,
    /// Ciphertexts the stage writes.
    pub output_ciphertexts: usize,
    /// The diagonal products, one per (input, output) ciphertext pair with
    /// nonzero weights.
    pub blocks: Vec<DiagonalMatVec>,
    /// Rotate-and-sum steps applied to every output ciphertext afterwards.
    pub sum_steps: Vec<usize>,
    /// Bias to add at each output ciphertext, as (slot, value).
    pub bias: Vec<Vec<(u32, f64)>>,
    /// Where the stage's outputs lie.
    pub output_layout: SlotLayout,
}

impl LinearTransform {
    /// The rotation steps the runtime performs, hence the Galois keys it
    /// needs: each block's baby steps (hoisted, so each needs its key), the
    /// gaps between consecutive giant steps (giant steps are summed
    /// Horner-style, `acc = rot(acc, g_next - g) + inner_g`, so a block whose
    /// giant steps are the multiples of its baby size needs one key for all
    /// of them), and the rotate-and-sum steps.
    pub fn rotation_steps(&self) -> impl Iterator<Item = usize> + '_ {
        self.window_sums
            .iter()
            .flatten()
            .copied()
            .chain(
                self.blocks
                    .iter()
                    .flat_map(|b| b.baby_steps.iter().copied().chain(b.giant_gaps())),
            )
            .chain(self.sum_steps.iter().copied())
            .filter(|&s| s != 0)
    }

    /// Relative cost: plaintext products plus rotations, a rotation being
    /// about as dear as `ROTATION_COST` plaintext products.
    pub fn cost(&self) -> usize {
        const ROTATION_COST: usize = 12;
        self.blocks
            .iter()
            .map(|b| b.diagonal_count() + ROTATION_COST * b.rotation_count())
            .sum::<usize>()
            + ROTATION_COST * self.sum_steps.len() * self.output_ciphertexts
            + ROTATION_COST * self.window_sum_rotations() * self.input_ciphertexts
    }

    /// Rotations of the window sums, per input ciphertext.
    pub fn window_sum_rotations(&self) -> usize {
        self.window_sums.iter().map(Vec::len).sum()
    }
}

impl std::fmt::Display for LinearTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.window_sums.is_empty() {
            write!(
                f,
                "window sums ({} rotations), then ",
                self.window_sum_rotations()
            )?;
        }
        write!(
            f,
            "{} -> {} ciphertext(s), {} diagonals, {} rotations, {} sum steps",
            self.input_ciphertexts,
            self.output_ciphertexts,
            self.blocks
                .iter()
                .map(DiagonalMatVec::diagonal_count)
                .sum::<usize>(),
            self.blocks
                .iter()
                .map(DiagonalMatVec::rotation_count)
                .sum::<usize>(),
            self.sum_steps.len()
        )
    }
}

/// Diagonals of one (input ct, output ct) block: step -> slot -> weight.
type Blocks = BTreeMap<(usize, usize), BTreeMap<usize, BTreeMap<u32, f64>>>;

fn add_entry(blocks: &mut Blocks, key: (usize, usize), step: usize, slot: usize, w: f64) {
    *blocks
        .entry(key)
        .or_default()
        .entry(step)
        .or_default()
        .entry(slot as u32)
        .or_insert(0.0) += w;
}

/// The direct form into `output`. An output replicated with a period gets
/// every copy written (a layout another value fixed: a product's operands
/// share one).
pub fn lower_direct(map: &AffineMap, input: &SlotLayout, output: &SlotLayout) -> LinearTransform {
    let slots = input.slots;
    let mut blocks = Blocks::new();
    for (i, column) in map.columns.iter().enumerate() {
        let p = input.positions[i] as usize;
        for &(o, w) in column {
            let q = output.positions[o as usize] as usize;
            let out_ct = q / slots;
            let copies = match output.period {
                Some(period) => (q % period..slots).step_by(period),
                None => (q % slots..q % slots + 1).step_by(1),
            };
            for out_slot in copies {
                let (in_ct, step) = match input.period {
                    // Any replica of x_i will do: take the one `step` slots
                    // after the output slot, with `step` in [0, period).
                    Some(period) => (0, (p + period - out_slot % period) % period),
                    None => (p / slots, (p % slots + slots - out_slot) % slots),
                };
                add_entry(&mut blocks, (in_ct, out_ct), step, out_slot, w);
            }
        }
    }
    finish(
        blocks,
        input.ciphertexts,
        output.clone(),
        Vec::new(),
        &map.bias,
    )
}

/// The rotate-and-sum form: outputs compact with period `m`.
pub fn lower_rotate_and_sum(map: &AffineMap, input: &SlotLayout) -> Option<LinearTransform> {
    let slots = input.slots;
    let m = map.rows.next_power_of_two();
    let period = input.period.unwrap_or(slots);
    if input.ciphertexts > 1 && input.period.is_some() || m >= period {
        return None;
    }
    let copies = slots / period;
    let mut blocks = Blocks::new();
    for (i, column) in map.columns.iter().enumerate() {
        let p = input.positions[i] as usize % period;
        let in_ct = input.positions[i] as usize / slots;
        for &(o, w) in column {
            let step = (p + m - o as usize % m) % m;
            // z[s] = diag[s] * x[s + step] holds x_i; s = o (mod m).
            let s = (p + period - step) % period;
            for k in 0..copies {
                add_entry(&mut blocks, (in_ct, 0), step, s + k * period, w);
            }
        }
    }
    let sum_steps = std::iter::successors(Some(m), |&s| Some(s * 2))
        .take_while(|&s| s < period)
        .collect();
    let output = SlotLayout {
        slots,
        positions: (0..map.rows as u32).collect(),
        period: Some(m),
        ciphertexts: 1,
    };
    Some(finish(
        blocks,
        input.ciphertexts,
        output,
        sum_steps,
        &map.bias,
    ))
}

/// Arranges each block's diagonals baby-step giant-step with the baby size
/// (a power of two) that needs the fewest rotations.
fn finish(
    blocks: Blocks,
    input_ciphertexts: usize,
    output: SlotLayout,
    sum_steps: Vec<usize>,
    bias: &[f64],
) -> LinearTransform {
    let slots = output.slots;
    let mut lowered = Vec::with_capacity(blocks.len());
    for ((input, out_ct), diagonals) in blocks {
        let steps: Vec<usize> = diagonals.keys().copied().collect();
        let baby = best_baby_size(&steps, slots);
        let mut giants: BTreeMap<usize, Vec<(usize, Diagonal)>> = BTreeMap::new();
        for (step, entries) in diagonals {
            let (g, b) = (step - step % baby, step % baby);
            // Pre-rotate by -g: the weight for slot s moves to slot s + g.
            let entries = entries
                .into_iter()
                .filter(|(_, w)| *w != 0.0)
                .map(|(s, w)| (((s as usize + g) % slots) as u32, w))
                .collect();
            giants.entry(g).or_default().push((b, Diagonal { entries }));
        }
        let baby_steps: Vec<usize> = giants
            .values()
            .flat_map(|terms| terms.iter().map(|(b, _)| *b))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        lowered.push(DiagonalMatVec {
            input,
            output: out_ct,
            baby_steps,
            giant_steps: giants.into_iter().collect(),
        });
    }
    let mut bias_slots = vec![Vec::new(); output.ciphertexts];
    for (o, &b) in bias.iter().enumerate() {
        if b != 0.0 {
            let q = output.positions[o] as usize;
            match output.period {
                Some(period) => {
                    for copy in (q % period..slots).step_by(period) {
                        bias_slots[0].push((copy as u32, b));
                    }
                }
                None => bias_slots[q / slots].push(((q % slots) as u32, b)),
            }
        }
    }
    LinearTransform {
        window_sums: Vec::new(),
        input_ciphertexts,
        output_ciphertexts: output.ciphertexts,
        blocks: lowered,
        sum_steps,
        bias: bias_slots,
        output_layout: output,
    }
}

fn best_baby_size(steps: &[usize], slots: usize) -> usize {
    let rotations = |baby: usize| {
        let babies: HashSet<usize> = steps.iter().map(|s| s % baby).filter(|&b| b != 0).collect();
        let giants: HashSet<usize> = steps
            .iter()
            .map(|s| s - s % baby)
            .filter(|&g| g != 0)
            .collect();
        babies.len() + giants.len()
    };
    std::iter::successors(Some(1usize), |&b| Some(b * 2))
        .take_while(|&b| b <= slots)
        .min_by_key(|&b| (rotations(b), b))
        .unwrap_or(1)
}

/// Candidate output layouts for a map from a tensor of `in_shape` laid out as
/// `input` to one of `out_shape`: compact, and for images the input's grid
/// subsampled at the output's stride, gapped or multiplexed.
pub fn candidate_layouts(
    input: &SlotLayout,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<SlotLayout> {
    let slots = input.slots;
    let n: usize = out_shape.iter().product();
    let mut candidates = vec![SlotLayout::strided(&[n], &[1], slots)];
    // The output image's stride over the input's rows and columns.
    let stride = |h: usize, w: usize| [(in_shape[2] / h).max(1), (in_shape[3] / w).max(1)];
    if let (Some([sc, sy, sx]), &[1, c, h, w]) = (input.grid_strides(in_shape), out_shape) {
        let [ry, rx] = stride(h, w);
        let (gy, gx) = (sy * ry, sx * rx);
        let span = (h - 1) * gy + (w - 1) * gx + 1;
        let channel = if c > 1 && span <= sc { sc } else { span };
        // Channels a power of two apart, when they fit: the channel offsets
        // of the next layer's diagonals then split cleanly into baby and
        // giant steps (and wrap onto each other), where a tight stride
        // scatters them. Listed first, so that it wins ties.
        let aligned = span.next_power_of_two();
        if c > 1 && aligned != channel && c * aligned <= slots {
            candidates.push(SlotLayout::strided(
                &[1, c, h, w],
                &[0, aligned, gy, gx],
                slots,
            ));
        }
        candidates.push(SlotLayout::strided(
            &[1, c, h, w],
            &[0, channel, gy, gx],
            slots,
        ));
    }
    // A grid larger than the input's (padding) would put two elements in
    // one slot.
    candidates.retain(|layout| {
        let mut seen = HashSet::with_capacity(layout.len());
        layout.positions.iter().all(|p| seen.insert(*p))
    });
    // Multiplexed: a strided output's channels in its grid's gaps (and a
    // multiplexed input's layout kept), so that the channels of later
    // stages fill as few ciphertexts as the first stage's. Only where it
    // saves ciphertexts over the gapped grid, whose next layer needs fewer
    // diagonals (its kernel offsets alone).
    if let (Some(grid), &[1, c, h, w]) = (input.image_grid(in_shape), out_shape) {
        let multiplexed = grid.subsampled([c, h, w], stride(h, w));
        let layout = SlotLayout::on_grid([c, h, w], multiplexed, slots);
        let gapped = candidates[1..].iter().map(|l| l.ciphertexts).min();
        if multiplexed.factors() != [1, 1] && gapped.is_none_or(|g| layout.ciphertexts < g) {
            candidates.push(layout);
        }
    }
    candidates
}

/// The cheapest lowering of `map` among the candidate layouts and forms,
/// with and without a pool's window sums factored out.
pub fn lower(
    map: &AffineMap,
    input: &SlotLayout,
    in_shape: &[usize],
    out_shape: &[usize],
) -> LinearTransform {
    let mut options = lowerings(map, input, in_shape, out_shape);
    if let Some(factor) = window_sum::factor(map, input, in_shape) {
        options.extend(factored_lowerings(&factor, out_shape));
    }
    options
        .into_iter()
        .min_by_key(LinearTransform::cost)
        .expect("at least one candidate")
}

/// Every lowering of a map with its window sums factored out: the window
/// sums, then the rest of the map lowered from where they lie.
pub(crate) fn factored_lowerings(
    factor: &window_sum::WindowSumFactor,
    out_shape: &[usize],
) -> Vec<LinearTransform> {
    lowerings(
        &factor.rest,
        &factor.sums_layout,
        &factor.sums_shape,
        out_shape,
    )
    .into_iter()
    .map(|t| LinearTransform {
        window_sums: factor.rounds.clone(),
        ..t
    })
    .collect()
}

/// Every lowering of `map` from `input`: direct into each candidate layout,
/// and rotate-and-sum.
fn lowerings(
    map: &AffineMap,
    input: &SlotLayout,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<LinearTransform> {
    let mut options: Vec<LinearTransform> = candidate_layouts(input, in_shape, out_shape)
        .iter()
        .map(|layout| lower_direct(map, input, layout))
        .collect();
    options.extend(lower_rotate_and_sum(map, input));
    options
}

/// The cheapest lowering of `map`, read from `input` (a tensor of
/// `in_shape`), into the given output layout: direct, or with a pool's
/// window sums factored out first.
fn lower_into(
    map: &AffineMap,
    input: &SlotLayout,
    in_shape: &[usize],
    output: &SlotLayout,
) -> LinearTransform {
    let direct = lower_direct(map, input, output);
    let factored = window_sum::factor(map, input, in_shape).map(|f| LinearTransform {
        window_sums: f.rounds.clone(),
        ..lower_direct(&f.rest, &f.sums_layout, output)
    });
    std::iter::once(direct)
        .chain(factored)
        .min_by_key(LinearTransform::cost)
        .expect("the direct form")
}

/// One input of an affine stage: its map, where its tensor lies, its shape.
pub struct Part<'a> {
    /// The map from this input to the stage's output.
    pub map: &'a AffineMap,
    /// Where the input's elements lie.
    pub layout: &'a SlotLayout,
    /// The input tensor's shape.
    pub shape: &'a [usize],
}

/// The cheapest lowering of an affine stage of one or more inputs (one
/// transform per part, all writing one output layout so that their sums
/// add up): into `forced` when another value fixed the output's layout,
/// else into the cheapest of every part's candidate layouts (and
/// rotate-and-sum where all parts allow the same). A single part with a
/// free layout is lowered exactly as [`lower`] does.
pub fn lower_parts(
    parts: &[Part<'_>],
    out_shape: &[usize],
    forced: Option<&SlotLayout>,
) -> Vec<LinearTransform> {
    if let ([part], None) = (parts, forced) {
        return vec![lower(part.map, part.layout, part.shape, out_shape)];
    }
    let candidates: Vec<SlotLayout> = match forced {
        Some(layout) => vec![layout.clone()],
        None => {
            let mut all: Vec<SlotLayout> = Vec::new();
            for part in parts {
                for layout in candidate_layouts(part.layout, part.shape, out_shape) {
                    if !all.contains(&layout) {
                        all.push(layout);
                    }
                }
            }
            all
        }
    };
    let mut options: Vec<Vec<LinearTransform>> = candidates
        .iter()
        .map(|layout| {
            parts
                .iter()
                .map(|p| lower_into(p.map, p.layout, p.shape, layout))
                .collect()
        })
        .collect();
    if forced.is_none() {
        let summed: Option<Vec<LinearTransform>> = parts
            .iter()
            .map(|p| lower_rotate_and_sum(p.map, p.layout))
            .collect();
        if let Some(summed) = summed {
            let first = &summed[0];
            let compatible = summed
                .iter()
                .all(|t| t.sum_steps == first.sum_steps && t.output_layout == first.output_layout);
            if compatible {
                options.push(summed);
            }
        }
    }
    options
        .into_iter()
        .min_by_key(|parts| parts.iter().map(LinearTransform::cost).sum::<usize>())
        .expect("at least one candidate layout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckks::simulate::apply_linear;

    /// A `k x k` convolution of `cin x h x w` to `cout` channels at `stride`
    /// with `k / 2` zero padding, weights and biases made up.
    fn conv_map(cin: usize, cout: usize, [h, w]: [usize; 2], k: usize, stride: usize) -> AffineMap {
        let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
        let mut columns = vec![Vec::new(); cin * h * w];
        for co in 0..cout {
            for (y, x) in (0..oh).flat_map(|y| (0..ow).map(move |x| (y, x))) {
                let o = ((co * oh + y) * ow + x) as u32;
                for (ci, dy, dx) in (0..cin)
                    .flat_map(|ci| (0..k).flat_map(move |dy| (0..k).map(move |dx| (ci, dy, dx))))
                {
                    let (iy, ix) = (
                        (y * stride + dy) as isize - (k / 2) as isize,
                        (x * stride + dx) as isize - (k / 2) as isize,
                    );
                    if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                        let weight = (((co * 7 + ci * 5 + dy * 3 + dx) % 11) as f64 - 5.0) / 8.0;
                        columns[(ci * h + iy as usize) * w + ix as usize].push((o, weight));
                    }
                }
            }
        }
        AffineMap {
            rows: cout * oh * ow,
            cols: cin * h * w,
            columns,
            bias: (0..cout * oh * ow).map(|o| (o % 5) as f64 / 4.0).collect(),
        }
    }

    /// `t` applied to `x` laid out as `input` against the map itself.
    fn assert_computes(t: &LinearTransform, map: &AffineMap, input: &SlotLayout, x: &[f64]) {
        let out = apply_linear(t, &input.pack(x));
        for (a, b) in t.output_layout.unpack(&out).iter().zip(map.apply(x)) {
            assert!((a - b).abs() < 1e-9, "{t}: {a} vs {b}");
        }
    }

    #[test]
    fn a_strided_convolution_multiplexes_where_gaps_would_take_more_ciphertexts() {
        // Four 8x8 channels fill a 256-slot ciphertext; a stride-2 output of
        // eight 4x4 channels on the gapped grid would take two.
        let input = SlotLayout::strided(&[1, 4, 8, 8], &[0, 64, 8, 1], 256);
        let map = conv_map(4, 8, [8, 8], 3, 2);
        let t = lower(&map, &input, &[1, 4, 8, 8], &[1, 8, 4, 4]);
        assert_eq!(t.output_ciphertexts, 1, "{t}");
        let grid = t.output_layout.image_grid(&[1, 8, 4, 4]).expect("a grid");
        assert_eq!(grid.factors(), [2, 2], "{grid:?}");
        let x: Vec<f64> = (0..256).map(|v| (v as f64 * 0.31).sin()).collect();
        assert_computes(&t, &map, &input, &x);
        // The next convolution may keep the multiplexed layout, and reads
        // it right into it or wherever it goes.
        let next = conv_map(8, 8, [4, 4], 3, 1);
        let y = map.apply(&x);
        let shape = [1, 8, 4, 4];
        let candidates = candidate_layouts(&t.output_layout, &shape, &shape);
        assert!(candidates.contains(&t.output_layout));
        let kept = lower_direct(&next, &t.output_layout, &t.output_layout);
        assert_computes(&kept, &next, &t.output_layout, &y);
        let u = lower(&next, &t.output_layout, &shape, &shape);
        assert_computes(&u, &next, &t.output_layout, &y);
        // Where the gapped grid fits as few ciphertexts, it is kept.
        let roomy = SlotLayout::strided(&[1, 4, 8, 8], &[0, 64, 8, 1], 1024);
        let kept = lower(&map, &roomy, &[1, 4, 8, 8], &[1, 8, 4, 4]);
        let grid = kept
            .output_layout
            .image_grid(&[1, 8, 4, 4])
            .expect("a grid");
        assert_eq!(grid.factors(), [1, 1], "{kept}");
        assert_computes(&kept, &map, &roomy, &x);
    }
}
