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
        let span = positions.iter().max().map_or(0, |&p| p as usize + 1);
        Self {
            slots,
            positions,
            period: None,
            ciphertexts: span.div_ceil(slots).max(1),
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
        // At most one ciphertext per element: what packing allocates stays
        // within a multiple of the tensor itself.
        if self.ciphertexts > elements.max(1) || self.ciphertexts != span.div_ceil(slots).max(1) {
            return Err(format!(
                "{} ciphertexts where its positions fill {}",
                self.ciphertexts,
                span.div_ceil(slots).max(1)
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

#[cfg(test)]
mod tests {
    use super::*;

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
