//! Factoring a pooling window out of an affine map: `M = C ∘ S`, where `S`
//! sums the non-overlapping `kh × kw` windows of an image and `C` is what is
//! left (the pool's scale folded into it).
//!
//! An average pool followed by a convolution probes to one map whose
//! diagonals number (kernel offsets × pool offsets × channel offsets): 2048
//! for lenet5's second convolution. `S` costs only rotations and additions
//! on a grid layout (`x += rot(x, sx)`, then `x += rot(x, sy)` for 2 × 2),
//! no plaintext product and no level, and leaves each window's sum at its
//! top-left slot; `C` read from those slots has a pool's offsets fewer
//! diagonals. This is the rotate-and-add pooling of Gazelle (Juvekar et al.
//! 2018) and LoLa (Brutzkus et al. 2019), found in the map itself: the inputs
//! of one window feed every output with the same weight.

use crate::ckks::layout::SlotLayout;
use crate::graph::linear_map::AffineMap;

/// A window-sum factor of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSumFactor {
    /// Window height and width.
    pub window: [usize; 2],
    /// Rotation rounds of `S`: each round replaces `x` by `x + sum rot(x, s)`.
    pub rounds: Vec<Vec<usize>>,
    /// `C`: from the window sums to the map's outputs.
    pub rest: AffineMap,
    /// Where the window sums lie (each window's top-left input slot).
    pub sums_layout: SlotLayout,
    /// Shape of the window sums, `[1, C, H / kh, W / kw]`.
    pub sums_shape: Vec<usize>,
}

impl WindowSumFactor {
    /// The input elements each window sum adds, in `rest`'s column order,
    /// for a `[1, C, H, W]` input `shape` read in row-major order.
    pub fn window_inputs(&self, shape: &[usize]) -> Vec<Vec<u32>> {
        let (h, w) = (shape[2], shape[3]);
        let [kh, kw] = self.window;
        let &[_, c, oh, ow] = self.sums_shape.as_slice() else {
            return Vec::new();
        };
        let mut sums = Vec::with_capacity(c * oh * ow);
        for ci in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let window = (0..kh).flat_map(|dy| {
                        (0..kw).map(move |dx| ((ci * h + oy * kh + dy) * w + ox * kw + dx) as u32)
                    });
                    sums.push(window.collect());
                }
            }
        }
        sums
    }
}

/// Largest window side tried.
const MAX_WINDOW: usize = 8;

/// The largest square window (side 2 to [`MAX_WINDOW`]) that factors out of
/// `map`, read from a `[1, C, H, W]` tensor laid out as the grid `input`.
pub fn factor(map: &AffineMap, input: &SlotLayout, in_shape: &[usize]) -> Option<WindowSumFactor> {
    let &[1, c, h, w] = in_shape else {
        return None;
    };
    let [_, sy, sx] = input.grid_strides(in_shape)?;
    (2..=MAX_WINDOW.min(h).min(w))
        .rev()
        .find_map(|k| factor_window(map, input, [c, h, w], [sy, sx], [k, k]))
}

fn factor_window(
    map: &AffineMap,
    input: &SlotLayout,
    [c, h, w]: [usize; 3],
    [sy, sx]: [usize; 2],
    [kh, kw]: [usize; 2],
) -> Option<WindowSumFactor> {
    let (oh, ow) = (h / kh, w / kw);
    let span = (kh - 1) * sy + (kw - 1) * sx;
    let index = |ci: usize, y: usize, x: usize| (ci * h + y) * w + x;
    let mut columns = Vec::with_capacity(c * oh * ow);
    let mut positions = Vec::with_capacity(c * oh * ow);
    for ci in 0..c {
        // Rows and columns past the last whole window must feed nothing.
        let outside = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .filter(|&(y, x)| y >= oh * kh || x >= ow * kw);
        if outside
            .into_iter()
            .any(|(y, x)| !map.columns[index(ci, y, x)].is_empty())
        {
            return None;
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let corner = index(ci, oy * kh, ox * kw);
                let column = &map.columns[corner];
                let same = (0..kh).all(|dy| {
                    (0..kw).all(|dx| {
                        same_column(&map.columns[index(ci, oy * kh + dy, ox * kw + dx)], column)
                    })
                });
                let p = input.positions[corner] as usize;
                // The window's slots must follow the corner's in its
                // ciphertext (or period) without wrapping around.
                let room = input.period.unwrap_or(input.slots);
                if !same || p % room + span >= room {
                    return None;
                }
                columns.push(column.clone());
                positions.push(p as u32);
            }
        }
    }
    let round = |count: usize, stride: usize| (1..count).map(|k| k * stride).collect::<Vec<_>>();
    let rounds = [round(kw, sx), round(kh, sy)]
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    Some(WindowSumFactor {
        window: [kh, kw],
        rounds,
        rest: AffineMap {
            rows: map.rows,
            cols: columns.len(),
            columns,
            bias: map.bias.clone(),
        },
        sums_layout: SlotLayout {
            slots: input.slots,
            positions,
            period: input.period,
            ciphertexts: input.ciphertexts,
        },
        sums_shape: vec![1, c, oh, ow],
    })
}

/// Two columns with the same outputs and weights equal to rounding.
fn same_column(a: &[(u32, f64)], b: &[(u32, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&(i, x), &(j, y))| i == j && (x - y).abs() <= 1e-12 * x.abs().max(y.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map reading a `[1, 1, 4, 4]` image: outputs are 2 × 2 window sums
    /// weighted per window.
    fn pooled_map() -> AffineMap {
        let mut columns = vec![Vec::new(); 16];
        for y in 0..4 {
            for x in 0..4 {
                let o = (y / 2) * 2 + x / 2;
                columns[y * 4 + x] = vec![(o as u32, 0.25 * (o + 1) as f64)];
            }
        }
        AffineMap {
            rows: 4,
            cols: 16,
            columns,
            bias: vec![1.0; 4],
        }
    }

    #[test]
    fn a_pooled_map_factors_into_window_sums() {
        let map = pooled_map();
        let input = SlotLayout::strided(&[1, 1, 4, 4], &[0, 0, 8, 1], 64);
        let f = factor(&map, &input, &[1, 1, 4, 4]).expect("factors");
        assert_eq!(f.window, [2, 2]);
        assert_eq!(f.rounds, vec![vec![1], vec![8]]);
        assert_eq!(f.sums_layout.positions, vec![0, 2, 16, 18]);
        assert_eq!(f.sums_shape, vec![1, 1, 2, 2]);
        // C applied to the window sums gives M applied to the image.
        let x: Vec<f64> = (0..16).map(|v| v as f64 * 0.5 - 3.0).collect();
        let sums: Vec<f64> = [(0, 0), (0, 2), (2, 0), (2, 2)]
            .iter()
            .map(|&(y, xx)| {
                x[y * 4 + xx] + x[y * 4 + xx + 1] + x[y * 4 + xx + 4] + x[y * 4 + xx + 5]
            })
            .collect();
        assert_eq!(f.rest.apply(&sums), map.apply(&x));
    }

    #[test]
    fn the_lowered_factor_computes_the_map_on_slots() {
        // Two channels of 6 x 6 pooled 2 x 2, then every pooled value
        // weighted into 3 outputs.
        let (c, h, w) = (2, 6, 6);
        let mut columns = vec![Vec::new(); c * h * w];
        for ci in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let o = (ci * 3 + y / 2) * 3 + x / 2;
                    columns[(ci * h + y) * w + x] = (0..3)
                        .map(|r| (r as u32, 0.25 * ((o * 7 + r * 3) % 11) as f64 - 1.0))
                        .collect();
                }
            }
        }
        let map = AffineMap {
            rows: 3,
            cols: c * h * w,
            columns,
            bias: vec![0.5, -0.5, 0.25],
        };
        let input = SlotLayout::strided(&[1, 2, 6, 6], &[0, 64, 8, 1], 256);
        let f = factor(&map, &input, &[1, 2, 6, 6]).expect("factors");
        let x: Vec<f64> = (0..c * h * w).map(|v| (v as f64 * 0.37).sin()).collect();
        let expected = map.apply(&x);
        let lowered = crate::ckks::linear::factored_lowerings(&f, &[1, 3]);
        assert!(!lowered.is_empty());
        for t in lowered {
            assert_eq!(t.window_sums, vec![vec![1], vec![8]], "{t}");
            let out = crate::ckks::simulate::apply_linear(&t, &input.pack(&x));
            for (a, b) in t.output_layout.unpack(&out).iter().zip(&expected) {
                assert!((a - b).abs() < 1e-12, "{t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn a_map_whose_window_inputs_differ_does_not_factor() {
        let mut map = pooled_map();
        map.columns[5][0].1 += 0.5;
        let input = SlotLayout::strided(&[1, 1, 4, 4], &[0, 0, 8, 1], 64);
        assert_eq!(factor(&map, &input, &[1, 1, 4, 4]), None);
    }

    #[test]
    fn windows_that_would_wrap_their_ciphertext_do_not_factor() {
        let map = pooled_map();
        // Rows 7 slots apart in 16-slot ciphertexts: the window whose
        // corner is at slot 14 runs on into the next ciphertext.
        let input = SlotLayout::strided(&[1, 1, 4, 4], &[0, 0, 7, 1], 16);
        assert_eq!(factor(&map, &input, &[1, 1, 4, 4]), None);
    }
}
