//! The linear map and bias an affine stage computes, found by probing: the
//! stage evaluated on zero gives the bias, on each unit vector one column.
//! Probing reuses the plaintext evaluator, so the map is exactly what the
//! operators compute, whatever the chain holds.

use heman_model::{Graph, Tensor};
use rayon::prelude::*;

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
    /// Probes the chain of `nodes` of `graph` (each affine in the previous
    /// one's output) on inputs of shape `input_shape`.
    pub fn probe(graph: &Graph, nodes: &[usize], input_shape: &[usize]) -> Self {
        let run = |x: Tensor| -> Tensor {
            nodes.iter().fold(x, |value, &index| {
                let node = &graph.nodes[index];
                let args: Vec<&Tensor> = node
                    .inputs
                    .iter()
                    .map(|&id| graph.constant(id).unwrap_or(&value))
                    .collect();
                node.op.eval(&args)
            })
        };
        let cols: usize = input_shape.iter().product();
        let bias = run(Tensor::zeros(input_shape.to_vec())).into_data();
        let columns = (0..cols)
            .into_par_iter()
            .map(|j| {
                let mut unit = Tensor::zeros(input_shape.to_vec());
                unit.data_mut()[j] = 1.0;
                run(unit)
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
            bias,
        }
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
