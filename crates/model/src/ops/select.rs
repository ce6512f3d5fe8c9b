//! Operators whose every output element is one input element, picked by
//! indices known when the model is loaded: `Slice`, `Gather` with constant
//! indices, `Split`'s outputs, `Expand`, `Resize` and `Upsample` in nearest
//! mode. One IR operator holds them all: the picked index of each output
//! element, resolved at import.

use serde::{Deserialize, Serialize};

use crate::tensor::{checked_volume, strides, volume, Shape, Tensor};

/// Most elements a selection may output: what a model file can make the
/// importer allocate for one node's index table (16 MiB), and for its
/// output when it folds a constant (32 MiB); far above any tensor an
/// encrypted network carries.
pub const MAX_SELECTED: usize = 1 << 22;

/// Output element `i` is input element `sources[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Select {
    /// The ONNX operator it was imported from, for listings.
    pub from: String,
    /// The output shape.
    pub shape: Shape,
    /// For each output element (row-major), the input element it copies.
    pub sources: Vec<u32>,
}

impl Select {
    /// The selection from an input of `input` shape to an output of `shape`
    /// where output multi-index `o` copies input multi-index `pick(o)`;
    /// refuses an output too large to index, or a pick outside the input.
    pub fn new(
        from: &str,
        input: &[usize],
        shape: Shape,
        pick: impl Fn(&[usize]) -> Vec<usize>,
    ) -> Result<Self, String> {
        let count = checked_volume(&shape)
            .filter(|&n| n <= MAX_SELECTED)
            .ok_or_else(|| format!("output shape {shape:?} is too large"))?;
        let in_strides = strides(input);
        let mut index = vec![0usize; shape.len()];
        let mut sources = Vec::with_capacity(count);
        for _ in 0..count {
            let at = pick(&index);
            if at.len() != input.len() || at.iter().zip(input).any(|(&i, &n)| i >= n) {
                return Err(format!("index {at:?} outside the input {input:?}"));
            }
            sources.push(
                at.iter()
                    .zip(&in_strides)
                    .map(|(i, s)| i * s)
                    .sum::<usize>() as u32,
            );
            for axis in (0..shape.len()).rev() {
                index[axis] += 1;
                if index[axis] < shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        Ok(Self {
            from: from.to_string(),
            shape,
            sources,
        })
    }

    /// The output shape, or why the selection does not fit the input.
    pub fn output_shape(&self, x: &[usize]) -> Result<Shape, String> {
        let n = volume(x);
        if self.sources.len() != volume(&self.shape)
            || self.sources.iter().any(|&s| s as usize >= n)
        {
            return Err(format!("selection does not fit an input of shape {x:?}"));
        }
        Ok(self.shape.clone())
    }

    /// The selected elements.
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let data = self.sources.iter().map(|&s| x.data()[s as usize]).collect();
        Tensor::new(self.shape.clone(), data)
    }
}

/// `ReduceMean` / `ReduceSum` over some axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reduce {
    /// The axes reduced, resolved and sorted at import.
    pub axes: Vec<usize>,
    /// Whether reduced axes stay as extent 1.
    pub keepdims: bool,
    /// The mean (else the sum).
    pub mean: bool,
}

impl Reduce {
    /// The reduced shape.
    pub fn output_shape(&self, x: &[usize]) -> Result<Shape, String> {
        if let Some(&a) = self.axes.iter().find(|&&a| a >= x.len()) {
            return Err(format!("axis {a} out of range for rank {}", x.len()));
        }
        Ok(x.iter()
            .enumerate()
            .filter_map(|(a, &d)| match (self.axes.contains(&a), self.keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect())
    }

    /// The sums or means.
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let shape = x.shape();
        let out_shape = self.output_shape(shape).expect("checked at import");
        // The output index of every input element: reduced axes dropped.
        let kept: Vec<usize> = shape
            .iter()
            .enumerate()
            .map(|(a, &d)| if self.axes.contains(&a) { 1 } else { d })
            .collect();
        let kept_strides = strides(&kept);
        let in_strides = strides(shape);
        let mut out = vec![0.0; volume(&kept)];
        for (flat, &v) in x.data().iter().enumerate() {
            let o: usize = (0..shape.len())
                .map(|a| {
                    let i = (flat / in_strides[a]) % shape[a];
                    if self.axes.contains(&a) {
                        0
                    } else {
                        i * kept_strides[a]
                    }
                })
                .sum();
            out[o] += v;
        }
        if self.mean {
            let count = (volume(shape) / volume(&kept).max(1)).max(1) as f64;
            out.iter_mut().for_each(|v| *v /= count);
        }
        Tensor::new(out_shape, out)
    }
}
