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
                let columns = (0..cols)
                    .into_par_iter()
                    .map(|j| {
                        let mut values = zeros.clone();
                        values[k].data_mut()[j] = 1.0;
                        run_region(graph, nodes, inputs, values)
                            .data()
                            .iter()
                            .zip(&bias)
                            .enumerate()
                            .filter_map(|(i, (y, b))| {
                                let w = y - b;
                                (w != 0.0).then_some((i as u32, w))
                            })
                            .collect()
                    })
                    .collect();
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
