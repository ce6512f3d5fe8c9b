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
