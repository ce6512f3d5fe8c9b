//! Where each element of a tensor lives among the slots of one or more
//! ciphertexts. Positions are global: ciphertext `p / slots`, slot `p % slots`.

use serde::{Deserialize, Serialize};

/// Where each element of a tensor lies among the slots of one or more
/// ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotLayout {
    /// Slots per ciphertext.
    pub slots: usize,
    /// Primary position of each element, in the tensor's row-major order.
    pub positions: Vec<u32>,
    /// When set (single ciphertext only), every slot `p + k * period` holds
    /// the same value as slot `p`: the tensor is replicated along the slots,
    /// so rotations never pull in a foreign value.
    pub period: Option<usize>,
    /// Number of ciphertexts.
    pub ciphertexts: usize,
}

impl SlotLayout {
    /// Elements at positions `0..n`, replicated with period `next_pow2(n)`
    /// when that fits twice in one ciphertext.
    pub fn compact(n: usize, slots: usize) -> Self {
        let period = n.next_power_of_two();
        Self {
            slots,
            positions: (0..n as u32).collect(),
            period: (period * 2 <= slots).then_some(period),
            ciphertexts: n.div_ceil(slots).max(1),
        }
    }

    /// Throughput packing's layout of `n` elements: element `e` in
    /// ciphertext `e`, the batch's input `b` in slot `b` of each (positions
    /// name input 0's slots). `None` when the positions overflow.
    pub fn batched(n: usize, slots: usize) -> Option<Self> {
        let positions = (0..n)
            .map(|e| u32::try_from(e * slots).ok())
            .collect::<Option<Vec<u32>>>()?;
        Some(Self {
            slots,
            positions,
            period: None,
            ciphertexts: n.max(1),
        })
    }

    /// Whether this is [`SlotLayout::batched`]'s layout for `slots`.
    pub fn is_batched(&self, slots: usize) -> bool {
        self.slots == slots
            && self.period.is_none()
            && self.ciphertexts == self.positions.len().max(1)
            && self
                .positions
                .iter()
                .enumerate()
                .all(|(e, &p)| p as usize == e * slots)
    }

    /// A batch of tensors in a [`SlotLayout::batched`] layout: element `e`
    /// of `batch[b]` in slot `b` of ciphertext `e`. The batch has at most
    /// `slots` inputs of the layout's length (the caller checks).
    pub fn pack_batch(&self, batch: &[&[f64]]) -> Vec<Vec<f64>> {
        let mut cts = vec![vec![0.0; self.slots]; self.ciphertexts];
        for (b, values) in batch.iter().enumerate() {
            for (&p, &v) in self.positions.iter().zip(*values) {
                cts[p as usize / self.slots][p as usize % self.slots + b] = v;
            }
        }
        cts
    }

    /// The first `batch` inputs back from a [`SlotLayout::batched`]
    /// layout's slot vectors, each a tensor's values.
    pub fn unpack_batch(&self, cts: &[Vec<f64>], batch: usize) -> Vec<Vec<f64>> {
        (0..batch)
            .map(|b| {
                self.positions
                    .iter()
                    .map(|&p| cts[p as usize / self.slots][p as usize % self.slots + b])
                    .collect()
            })
            .collect()
    }

    /// Elements of a tensor of `shape` at `sum(index[k] * strides[k])`.
    pub fn strided(shape: &[usize], strides: &[usize], slots: usize) -> Self {
        let n: usize = shape.iter().product();
        let mut positions = Vec::with_capacity(n);
        let mut index = vec![0usize; shape.len()];
        for _ in 0..n {
            positions.push(index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>() as u32);
            for axis in (0..shape.len()).rev() {
                index[axis] += 1;
                if index[axis] < shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        Self::at(positions, slots)
    }

    /// Elements at `positions`, unreplicated, in as many ciphertexts as
    /// the furthest position needs.
    fn at(positions: Vec<u32>, slots: usize) -> Self {
        Self {
            ciphertexts: spanned_ciphertexts(&positions, slots),
            slots,
            positions,
            period: None,
        }
    }

    /// Refuses a layout that [`SlotLayout::pack`] or [`SlotLayout::unpack`]
    /// could not follow for ciphertexts of `slots` slots holding `elements`
    /// values: what a data owner checks before trusting a layout it read
    /// from another party's keyparams.json (a period of 0, a position past
    /// the ciphertexts, a ciphertext count no position needs).
    pub fn check(&self, slots: usize, elements: usize) -> Result<(), String> {
        if self.slots != slots {
            return Err(format!("{} slots, the parameters have {slots}", self.slots));
        }
        if self.positions.len() != elements {
            return Err(format!(
                "{} positions for a tensor of {elements} elements",
                self.positions.len()
            ));
        }
        let span = self.positions.iter().max().map_or(0, |&p| p as usize + 1);
        let spanned = spanned_ciphertexts(&self.positions, slots);
        // At most one ciphertext per element: what packing allocates stays
        // within a multiple of the tensor itself.
        if self.ciphertexts > elements.max(1) || self.ciphertexts != spanned {
            return Err(format!(
                "{} ciphertexts where its positions fill {spanned}",
                self.ciphertexts
            ));
        }
        if let Some(period) = self.period {
            if !period.is_power_of_two() || period * 2 > slots || span > period {
                return Err(format!(
                    "replication period {period} (needs a power of two that holds every position and fits twice in {slots} slots)"
                ));
            }
        }
        Ok(())
    }

    /// Number of tensor elements.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether the layout holds no element.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The strides `(channel, row, column)` when the layout of a `[1, C, H, W]`
    /// tensor is `c * sc + y * sy + x * sx` (a plain or gapped grid).
    pub fn grid_strides(&self, shape: &[usize]) -> Option<[usize; 3]> {
        let &[1, c, h, w] = shape else {
            return None;
        };
        let at = |ci: usize, y: usize, x: usize| self.positions[(ci * h + y) * w + x] as usize;
        let base = at(0, 0, 0);
        let step = |count: usize, f: &dyn Fn() -> usize| if count > 1 { f() } else { 0 };
        let sc = step(c, &|| at(1, 0, 0).wrapping_sub(base));
        let sy = step(h, &|| at(0, 1, 0).wrapping_sub(base));
        let sx = step(w, &|| at(0, 0, 1).wrapping_sub(base));
        let strided = base == 0
            && (0..c).all(|ci| {
                (0..h).all(|y| (0..w).all(|x| at(ci, y, x) == ci * sc + y * sy + x * sx))
            });
        strided.then_some([sc, sy, sx])
    }

    /// The grid a `[1, C, H, W]` tensor's layout follows, multiplexed or
    /// plain ([`ImageGrid`]), when it follows one from position 0.
    pub fn image_grid(&self, shape: &[usize]) -> Option<ImageGrid> {
        let &[1, c, h, w] = shape else {
            return None;
        };
        if h < 2 || w < 2 || self.positions.len() != c * h * w {
            return None;
        }
        let at = |ci: usize, y: usize, x: usize| self.positions[(ci * h + y) * w + x] as usize;
        let step = [at(0, 1, 0), at(0, 0, 1)];
        if at(0, 0, 0) != 0 || step.contains(&0) {
            return None;
        }
        let factors = |step: usize| {
            std::iter::successors(Some(1usize), |k| Some(k * 2))
                .take_while(move |&k| k <= step && k <= c)
                .filter(move |&k| step.is_multiple_of(k))
        };
        for ky in factors(step[0]) {
            for kx in factors(step[1]).filter(|&kx| ky * kx <= c.max(1)) {
                let m = ky * kx;
                let grid = ImageGrid {
                    channel: if c > m { at(m, 0, 0) } else { 0 },
                    unit: [step[0] / ky, step[1] / kx],
                    step,
                };
                let fits = (0..c).all(|ci| {
                    (0..h).all(|y| (0..w).all(|x| at(ci, y, x) == grid.position(ci, y, x)))
                });
                if fits {
                    return Some(grid);
                }
            }
        }
        None
    }

    /// A `[1, c, h, w]` tensor laid out on `grid`.
    pub fn on_grid(shape: [usize; 3], grid: ImageGrid, slots: usize) -> Self {
        let [c, h, w] = shape;
        let positions: Vec<u32> = (0..c)
            .flat_map(|ci| (0..h).flat_map(move |y| (0..w).map(move |x| (ci, y, x))))
            .map(|(ci, y, x)| grid.position(ci, y, x) as u32)
            .collect();
        Self::at(positions, slots)
    }

    /// Packs a tensor's values into `ciphertexts` slot vectors.
    pub fn pack(&self, values: &[f64]) -> Vec<Vec<f64>> {
        let mut cts = vec![vec![0.0; self.slots]; self.ciphertexts];
        for (&p, &v) in self.positions.iter().zip(values) {
            let (ct, slot) = (p as usize / self.slots, p as usize % self.slots);
            cts[ct][slot] = v;
            if let Some(period) = self.period {
                for copy in (slot % period..self.slots).step_by(period) {
                    cts[ct][copy] = v;
                }
            }
        }
        cts
    }

    /// Reads a tensor's values back from slot vectors.
    pub fn unpack(&self, cts: &[Vec<f64>]) -> Vec<f64> {
        self.positions
            .iter()
            .map(|&p| cts[p as usize / self.slots][p as usize % self.slots])
            .collect()
    }
}

/// Ciphertexts of `slots` slots that positions up to the largest of
/// `positions` fill (at least one).
fn spanned_ciphertexts(positions: &[u32], slots: usize) -> usize {
    let span = positions.iter().max().map_or(0, |&p| p as usize + 1);
    span.div_ceil(slots).max(1)
}

/// Where an image's channels and pixels lie (Lee et al., "Low-Complexity
/// Deep Convolutional Neural Networks on Fully Homomorphic Encryption Using
/// Multiplexed Parallel Convolutions", ICML 2022): pixel `(y, x)` of
/// channel `c` at `(c / m) channel + ((c % m) / kx) unit_y + (c % kx)
/// unit_x + y step_y + x step_x`, where `ky = step_y / unit_y` and `kx =
/// step_x / unit_x`, so that `m = ky kx` channels share one grid, each in
/// the others' gaps. A strided convolution leaves its output on every
/// `r`-th row and column of its input's grid: multiplexing fills those gaps
/// with other channels instead of leaving them empty, so the same slots
/// hold `r^2` times the channels. A plain grid has `unit == step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGrid {
    /// Between consecutive groups of `m` channels.
    pub channel: usize,
    /// Between neighbouring channels of a group, along rows and columns.
    pub unit: [usize; 2],
    /// Between neighbouring pixels, along rows and columns.
    pub step: [usize; 2],
}

impl ImageGrid {
    /// Channels per group along rows and columns.
    pub fn factors(&self) -> [usize; 2] {
        [self.step[0] / self.unit[0], self.step[1] / self.unit[1]]
    }

    /// The slot of pixel `(y, x)` of channel `c`.
    pub fn position(&self, c: usize, y: usize, x: usize) -> usize {
        let [ky, kx] = self.factors();
        let (group, inner) = (c / (ky * kx), c % (ky * kx));
        group * self.channel
            + (inner / kx) * self.unit[0]
            + (inner % kx) * self.unit[1]
            + y * self.step[0]
            + x * self.step[1]
    }

    /// The grid of a `[c, h, w]` output read every `stride` pixels of this
    /// grid's image, its channels multiplexed into the gaps; its groups a
    /// power of two apart (so that the next layer's channel offsets split
    /// into baby and giant steps).
    pub fn subsampled(&self, [_, h, w]: [usize; 3], stride: [usize; 2]) -> Self {
        let step = [self.step[0] * stride[0], self.step[1] * stride[1]];
        let [ky, kx] = [step[0] / self.unit[0], step[1] / self.unit[1]];
        let span = (h - 1) * step[0]
            + (w - 1) * step[1]
            + (ky - 1) * self.unit[0]
            + (kx - 1) * self.unit[1]
            + 1;
        Self {
            channel: span.next_power_of_two(),
            unit: self.unit,
            step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strided_image_multiplexes_its_channels_into_the_gaps() {
        // 4 channels of 4x4 on a plain 4x4 grid, then a stride-2 output of 8
        // channels of 2x2: four channels share each 4x4 grid.
        let plain = SlotLayout::strided(&[1, 4, 4, 4], &[0, 16, 4, 1], 64);
        let grid = plain.image_grid(&[1, 4, 4, 4]).unwrap();
        assert_eq!(grid.unit, grid.step);
        let out = grid.subsampled([8, 2, 2], [2, 2]);
        assert_eq!((out.unit, out.step, out.channel), ([4, 1], [8, 2], 16));
        let layout = SlotLayout::on_grid([8, 2, 2], out, 64);
        // Channel 1 sits one column right of channel 0, channel 2 one row
        // down, channel 4 in the next group.
        assert_eq!(&layout.positions[..4], &[0, 2, 8, 10]);
        assert_eq!(&layout.positions[4..8], &[1, 3, 9, 11]);
        assert_eq!(&layout.positions[8..12], &[4, 6, 12, 14]);
        assert_eq!(layout.positions[16], 16);
        assert_eq!(layout.check(64, 32), Ok(()));
        let mut seen = std::collections::HashSet::new();
        assert!(layout.positions.iter().all(|p| seen.insert(*p)));
        // Recognised back, and subsampled again: sixteen channels per grid.
        assert_eq!(layout.image_grid(&[1, 8, 2, 2]), Some(out));
        let twice = out.subsampled([16, 1, 1], [2, 2]);
        assert_eq!(twice.factors(), [4, 4]);
    }

    #[test]
    fn layouts_the_compiler_makes_pass_their_check() {
        assert_eq!(SlotLayout::compact(100, 4096).check(4096, 100), Ok(()));
        assert_eq!(SlotLayout::compact(5000, 4096).check(4096, 5000), Ok(()));
        let grid = SlotLayout::strided(&[1, 3, 4, 4], &[64, 8, 1], 4096);
        assert_eq!(grid.check(4096, 48), Ok(()));
    }

    /// Layouts a hostile keyparams.json could carry: each refused by name
    /// instead of dividing by zero, stepping by zero, indexing past the
    /// ciphertexts or allocating ciphertexts no position needs.
    #[test]
    fn damaged_layouts_are_refused() {
        let good = SlotLayout::compact(100, 4096);
        type Damage = Box<dyn Fn(&mut SlotLayout)>;
        let cases: [(&str, Damage); 6] = [
            ("slots", Box::new(|l| l.slots = 0)),
            ("period", Box::new(|l| l.period = Some(0))),
            ("period", Box::new(|l| l.period = Some(64))),
            ("ciphertexts", Box::new(|l| l.ciphertexts = 1 << 40)),
            ("ciphertexts", Box::new(|l| l.positions[3] = u32::MAX)),
            (
                "ciphertexts",
                Box::new(|l| {
                    l.positions[3] = u32::MAX;
                    l.ciphertexts = 1 << 20;
                }),
            ),
        ];
        for (what, damage) in cases {
            let mut layout = good.clone();
            damage(&mut layout);
            let error = layout.check(4096, 100).unwrap_err();
            assert!(error.contains(what), "{what}: {error}");
        }
        assert!(good.check(4096, 99).unwrap_err().contains("positions"));
    }
}
