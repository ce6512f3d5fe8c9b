//! The linear map and bias an affine stage computes, found by probing: the
//! stage evaluated on zero gives the bias, on each unit vector one column
//! (of the map of the input that unit vector is in, the others zero).
//! Probing reuses the plaintext evaluator, so the map is exactly what the
//! operators compute, whatever the chain holds.

use std::collections::HashMap;

use heman_model::{Graph, Tensor, ValueId};
use rayon::prelude::*;

/// The output of the region `nodes` with `inputs` given `values`.
fn run_region(graph: &Graph, nodes: &[usize], inputs: &[ValueId], values: Vec<Tensor>) -> Tensor {
    let mut env: HashMap<ValueId, Tensor> = inputs.iter().copied().zip(values).collect();
    let mut last = None;
    for &index in nodes {
        let node = &graph.nodes[index];
        let args: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|id| {
                graph
                    .constant(*id)
                    .or_else(|| env.get(id))
                    .expect("a region reads constants, its inputs and its own values")
            })
            .collect();
        let y = node.op.eval(&args);
        env.insert(node.output, y);
        last = Some(node.output);
    }
    last.and_then(|id| env.remove(&id))
        .expect("a region has at least one node")
}

/// Spacing, in pixels, of the unit impulses one probe of an image region
/// carries: wider than the receptive field of the convolutions and pools
/// one affine region chains (3x3 twice, with strides, reaches 5 pixels).
const IMPULSE_SPACING: usize = 8;

/// Random inputs a spaced probing is checked on.
const CHECKS: u64 = 2;

/// A region being probed, with its output on zero inputs.
struct Region<'a> {
    graph: &'a Graph,
    nodes: &'a [usize],
    inputs: &'a [ValueId],
    zeros: &'a [Tensor],
    bias: &'a [f64],
}

impl Region<'_> {
    /// The region's output minus its bias, input `k` set to `x`, the
    /// others zero.
    fn response(&self, k: usize, x: impl FnOnce(&mut [f64])) -> Vec<f64> {
        let mut values = self.zeros.to_vec();
        x(values[k].data_mut());
        let mut y = run_region(self.graph, self.nodes, self.inputs, values).into_data();
        y.iter_mut().zip(self.bias).for_each(|(y, b)| *y -= b);
        y
    }

    /// One unit vector per probe: every column of input `k`'s map.
    fn probe_each(&self, k: usize, cols: usize) -> Vec<Vec<(u32, f64)>> {
        (0..cols)
            .into_par_iter()
            .map(|j| {
                self.response(k, |x| x[j] = 1.0)
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, w)| (w != 0.0).then_some((i as u32, w)))
                    .collect()
            })
            .collect()
    }

    /// For an image region (input `k` and the output both [1, C, H, W],
    /// the output's pixels an integer fraction of the input's), the columns
    /// from one probe per channel and offset in an [`IMPULSE_SPACING`]-pixel
    /// grid: each impulse's response is the output pixels nearest it, as
    /// for the estimation of sparse Jacobians by grouped columns (Curtis,
    /// Powell, Reid, 1974), with the structure read from the shapes instead
    /// of a known sparsity pattern. `None` where the shapes do not say, the
    /// grid saves nothing, or the map does not reproduce the region on
    /// random inputs (a receptive field wider than the spacing).
    fn probe_spaced(&self, k: usize) -> Option<Vec<Vec<(u32, f64)>>> {
        let (c, h, w) = image(self.graph.shape(self.inputs[k]))?;
        let output = self.graph.nodes[*self.nodes.last()?].output;
        let (_, oh, ow) = image(self.graph.shape(output))?;
        let s = IMPULSE_SPACING;
        if oh == 0 || ow == 0 || h % oh != 0 || w % ow != 0 || h * w <= s * s {
            return None;
        }
        let (fy, fx) = (h / oh, w / ow);
        let offsets: Vec<(usize, usize, usize)> = (0..c)
            .flat_map(|ch| (0..s.min(h)).flat_map(move |y| (0..s.min(w)).map(move |x| (ch, y, x))))
            .collect();
        // The nearest impulse of a probe to an output pixel's centre, along
        // one axis of `n` input pixels.
        let nearest = |out: usize, factor: usize, offset: usize, n: usize| {
            let centre = (out * factor) as f64 + (factor as f64 - 1.0) / 2.0;
            let steps = ((centre - offset as f64) / s as f64).round().max(0.0) as usize;
            offset + s * steps.min((n - 1 - offset) / s)
        };
        let entries: Vec<Vec<(usize, u32, f64)>> = offsets
            .par_iter()
            .map(|&(ch, oy, ox)| {
                let y = self.response(k, |x| {
                    for iy in (oy..h).step_by(s) {
                        for ix in (ox..w).step_by(s) {
                            x[(ch * h + iy) * w + ix] = 1.0;
                        }
                    }
                });
                y.into_iter()
                    .enumerate()
                    .filter(|&(_, v)| v != 0.0)
                    .map(|(i, v)| {
                        let (py, px) = ((i / ow) % oh, i % ow);
                        let iy = nearest(py, fy, oy, h);
                        let ix = nearest(px, fx, ox, w);
                        ((ch * h + iy) * w + ix, i as u32, v)
                    })
                    .collect()
            })
            .collect();
        let mut columns: Vec<Vec<(u32, f64)>> = vec![Vec::new(); c * h * w];
        for (col, row, v) in entries.into_iter().flatten() {
            columns[col].push((row, v));
        }
        columns
            .iter_mut()
            .for_each(|c| c.sort_unstable_by_key(|e| e.0));
        (0..CHECKS)
            .all(|seed| self.reproduces(k, &columns, seed))
            .then_some(columns)
    }

    /// Whether `columns` give the region's response to a pseudo-random
    /// input `k` (values in [-1, 1) from `seed`), to rounding.
    fn reproduces(&self, k: usize, columns: &[Vec<(u32, f64)>], seed: u64) -> bool {
        let x: Vec<f64> = (0..columns.len() as u64)
            .map(|j| {
                // splitmix64: spread (seed, j) over 64 bits.
                let mut z = (seed << 32 ^ j).wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as f64 / 2f64.powi(63) - 1.0
            })
            .collect();
        let want = self.response(k, |v| v.copy_from_slice(&x));
        let mut got = vec![0.0; want.len()];
        for (column, &xj) in columns.iter().zip(&x) {
            for &(i, w) in column {
                got[i as usize] += w * xj;
            }
        }
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        want.iter()
            .zip(&got)
            .all(|(a, b)| (a - b).abs() <= 1e-9 * scale)
    }
}

/// (C, H, W) of a shape [1, C, H, W].
fn image(shape: &[usize]) -> Option<(usize, usize, usize)> {
    match shape {
        [1, c, h, w] => Some((*c, *h, *w)),
        _ => None,
    }
}

/// `y = M x + b` with `M` stored by columns, zero entries omitted.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineMap {
    /// Output elements (rows of `M`).
    pub rows: usize,
    /// Input elements (columns of `M`).
    pub cols: usize,
    /// For each input element, the (output element, weight) pairs it feeds.
    pub columns: Vec<Vec<(u32, f64)>>,
    /// `b`, one entry per output element.
    pub bias: Vec<f64>,
}

impl AffineMap {
    /// Probes the single-input region `nodes` of `graph` (affine in
    /// `input`).
    pub fn probe(graph: &Graph, nodes: &[usize], input: ValueId) -> Self {
        Self::probe_region(graph, nodes, &[input]).remove(0)
    }

    /// Probes the region `nodes` of `graph` (in evaluation order, the last
    /// one's output the region's), jointly affine in `inputs`: one map per
    /// input, `y = sum_k M_k x_k + b`, the bias `b` carried by the first
    /// (the others' are zero), so that summing the parts' [`AffineMap::apply`]
    /// computes the region.
    pub fn probe_region(graph: &Graph, nodes: &[usize], inputs: &[ValueId]) -> Vec<Self> {
        let zeros: Vec<Tensor> = inputs
            .iter()
            .map(|&id| Tensor::zeros(graph.shape(id).to_vec()))
            .collect();
        let bias = run_region(graph, nodes, inputs, zeros.clone()).into_data();
        inputs
            .iter()
            .enumerate()
            .map(|(k, &id)| {
                let cols = graph.shape(id).iter().product();
                let region = Region {
                    graph,
                    nodes,
                    inputs,
                    zeros: &zeros,
                    bias: &bias,
                };
                let columns = region
                    .probe_spaced(k)
                    .unwrap_or_else(|| region.probe_each(k, cols));
                Self {
                    rows: bias.len(),
                    cols,
                    columns,
                    bias: if k == 0 {
                        bias.clone()
                    } else {
                        vec![0.0; bias.len()]
                    },
                }
            })
            .collect()
    }

    /// The map `x -> alpha * self(x) + beta` (a change of variable folded in).
    pub fn scaled(&self, alpha: f64, beta: f64) -> Self {
        let mut map = self.clone();
        for entry in map.columns.iter_mut().flatten() {
            entry.1 *= alpha;
        }
        for b in &mut map.bias {
            *b = alpha * *b + beta;
        }
        map
    }

    /// `M x + b`.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut y = self.bias.clone();
        for (column, &xj) in self.columns.iter().zip(x) {
            for &(i, w) in column {
                y[i as usize] += w * xj;
            }
        }
        y
    }

    /// Nonzero weights of `M`.
    pub fn nonzeros(&self) -> usize {
        self.columns.iter().map(Vec::len).sum()
    }

    /// The map `x -> next(self(x))`.
    pub fn then(&self, next: &AffineMap) -> AffineMap {
        assert_eq!(self.rows, next.cols, "composed maps must chain");
        let columns = self
            .columns
            .par_iter()
            .map(|column| {
                let mut out: std::collections::BTreeMap<u32, f64> = Default::default();
                for &(mid, w) in column {
                    for &(row, v) in &next.columns[mid as usize] {
                        *out.entry(row).or_insert(0.0) += w * v;
                    }
                }
                out.into_iter().filter(|&(_, w)| w != 0.0).collect()
            })
            .collect();
        AffineMap {
            rows: next.rows,
            cols: self.cols,
            columns,
            bias: next.apply(&self.bias),
        }
    }

    /// The same map with a zero bias.
    pub fn without_bias(mut self) -> Self {
        self.bias.iter_mut().for_each(|b| *b = 0.0);
        self
    }

    /// The map `x -> self(x) + other(x)` (two maps of one input and output).
    pub fn plus(&self, other: &AffineMap) -> AffineMap {
        assert_eq!(
            (self.rows, self.cols),
            (other.rows, other.cols),
            "summed maps must have one shape"
        );
        let columns = self
            .columns
            .iter()
            .zip(&other.columns)
            .map(|(a, b)| {
                let mut out: std::collections::BTreeMap<u32, f64> = a.iter().copied().collect();
                for &(row, w) in b {
                    *out.entry(row).or_insert(0.0) += w;
                }
                out.into_iter().filter(|&(_, w)| w != 0.0).collect()
            })
            .collect();
        AffineMap {
            rows: self.rows,
            cols: self.cols,
            columns,
            bias: self
                .bias
                .iter()
                .zip(&other.bias)
                .map(|(a, b)| a + b)
                .collect(),
        }
    }

    /// The maps of several inputs as one map of their concatenation (in
    /// order), the biases summed: what one stage reading all of them as one
    /// vector computes.
    pub fn concatenate(parts: &[AffineMap]) -> AffineMap {
        let rows = parts.first().map_or(0, |p| p.rows);
        let mut bias = vec![0.0; rows];
        let mut columns = Vec::new();
        for part in parts {
            assert_eq!(part.rows, rows, "concatenated maps must have one output");
            columns.extend(part.columns.iter().cloned());
            for (b, &p) in bias.iter_mut().zip(&part.bias) {
                *b += p;
            }
        }
        AffineMap {
            rows,
            cols: columns.len(),
            columns,
            bias,
        }
    }

    /// The same map stored by rows: for each output, its (input, weight) pairs.
    pub fn by_rows(&self) -> Vec<Vec<(u32, f64)>> {
        let mut rows = vec![Vec::new(); self.rows];
        for (j, column) in self.columns.iter().enumerate() {
            for &(i, w) in column {
                rows[i as usize].push((j as u32, w));
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The region of one node of a graph, on its first input.
    struct OneNode {
        nodes: [usize; 1],
        input: [ValueId; 1],
        zeros: Vec<Tensor>,
        bias: Vec<f64>,
    }

    impl OneNode {
        fn new(graph: &Graph, index: usize) -> Self {
            let input = [graph.nodes[index].inputs[0]];
            let zeros = vec![Tensor::zeros(graph.shape(input[0]).to_vec())];
            let bias = run_region(graph, &[index], &input, zeros.clone()).into_data();
            Self {
                nodes: [index],
                input,
                zeros,
                bias,
            }
        }

        fn region<'a>(&'a self, graph: &'a Graph) -> Region<'a> {
            Region {
                graph,
                nodes: &self.nodes,
                inputs: &self.input,
                zeros: &self.zeros,
                bias: &self.bias,
            }
        }
    }

    /// Every Conv of a residual network and of the strided ResNet-20 probed
    /// both ways: the spaced probes give the unit probes' columns exactly.
    #[test]
    fn spaced_probes_give_the_columns_of_unit_probes() {
        for (model, expected_convs) in [
            ("tests/graphs/resnet_basic_blocks.onnx", 2),
            ("tests/deep/resnet20/model.onnx", 21),
        ] {
            let graph = heman_model::load_onnx(&heman_testkit::repo_root().join(model)).unwrap();
            let convs: Vec<usize> = (0..graph.nodes.len())
                .filter(|&i| graph.nodes[i].op.name() == "Conv")
                .collect();
            assert!(convs.len() >= expected_convs, "{model}: {}", convs.len());
            // The first, a strided one and the last: the others are alike.
            let strided = convs.iter().position(|&i| {
                let input = graph.shape(graph.nodes[i].inputs[0])[2];
                graph.shape(graph.nodes[i].output)[2] < input
            });
            let picked = [Some(0), strided, Some(convs.len() - 1)];
            for index in picked.into_iter().flatten().map(|p| convs[p]) {
                let node = OneNode::new(&graph, index);
                let region = node.region(&graph);
                let input = node.input[0];
                let cols = graph.shape(input).iter().product();
                let each = region.probe_each(0, cols);
                let (_, h, w) = image(graph.shape(input)).unwrap();
                match region.probe_spaced(0) {
                    Some(spaced) => assert!(spaced == each, "{model}: node {index}"),
                    None => assert!(h * w <= IMPULSE_SPACING.pow(2), "{model}: node {index}"),
                }
            }
        }
    }

    /// A map whose columns were attributed to the wrong inputs is caught by
    /// the check on random inputs.
    #[test]
    fn a_wrong_attribution_does_not_reproduce_the_region() {
        let graph = heman_model::load_onnx(
            &heman_testkit::repo_root().join("tests/graphs/resnet_basic_blocks.onnx"),
        )
        .unwrap();
        let index = (0..graph.nodes.len())
            .find(|&i| graph.nodes[i].op.name() == "Conv")
            .unwrap();
        let node = OneNode::new(&graph, index);
        let region = node.region(&graph);
        let mut columns = region.probe_each(0, node.zeros[0].data().len());
        assert!(region.reproduces(0, &columns, 0));
        columns.swap(0, 1);
        assert!(!region.reproduces(0, &columns, 0));
    }
}
