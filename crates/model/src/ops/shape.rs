//! Data-movement operators: reshapes, `Transpose`, `Concat`.

use serde::{Deserialize, Serialize};

use crate::tensor::{strides, volume, Shape, Tensor};

/// Checks that a static reshape keeps the volume.
pub fn reshape_shape(x: &[usize], shape: &[usize]) -> Result<Shape, String> {
    if volume(x) != volume(shape) {
        return Err(format!("cannot reshape {x:?} to {shape:?}"));
    }
    Ok(shape.to_vec())
}

/// `Transpose`: output axis `i` is input axis `perm[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transpose {
    /// The permutation of the input axes, resolved at import (reversal when
    /// the model gives none).
    pub perm: Vec<usize>,
}

impl Transpose {
    /// The permuted shape, or why `perm` is not a permutation of the input's axes.
    pub fn output_shape(&self, x: &[usize]) -> Result<Shape, String> {
        let mut seen = vec![false; x.len()];
        if self.perm.len() != x.len() {
            return Err(format!("perm {:?} for a rank {} input", self.perm, x.len()));
        }
        for &p in &self.perm {
            if p >= x.len() || std::mem::replace(&mut seen[p], true) {
                return Err(format!("perm {:?} is not a permutation", self.perm));
            }
        }
        Ok(self.perm.iter().map(|&p| x[p]).collect())
    }

    /// The transposed tensor.
    ///
    /// # Panics
    /// When [`Transpose::output_shape`] refuses the input's shape (checked at
    /// import).
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let out_shape = self.output_shape(x.shape()).expect("checked at import");
        let (in_strides, out_strides) = (strides(x.shape()), strides(&out_shape));
        let data = (0..x.len())
            .map(|flat| {
                let src: usize = (0..out_shape.len())
                    .map(|axis| {
                        ((flat / out_strides[axis]) % out_shape[axis]) * in_strides[self.perm[axis]]
                    })
                    .sum();
                x.data()[src]
            })
            .collect();
        Tensor::new(out_shape, data)
    }
}

/// `Concat`: the inputs joined, in order, along one axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concat {
    /// The axis joined along, resolved to a non-negative index at import.
    pub axis: usize,
}

impl Concat {
    /// The joined shape, or why the inputs differ outside `axis`.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let first = inputs.first().ok_or("Concat needs at least one input")?;
        if self.axis >= first.len() {
            return Err(format!(
                "axis {} out of range for rank {}",
                self.axis,
                first.len()
            ));
        }
        let mut out = first.to_vec();
        out[self.axis] = 0;
        for shape in inputs {
            let same_rank = shape.len() == first.len();
            if !same_rank || (0..first.len()).any(|a| a != self.axis && shape[a] != first[a]) {
                return Err(format!(
                    "inputs {first:?} and {shape:?} differ outside axis {}",
                    self.axis
                ));
            }
            out[self.axis] += shape[self.axis];
        }
        Ok(out)
    }

    /// The joined tensor.
    ///
    /// # Panics
    /// When [`Concat::output_shape`] refuses the inputs' shapes (checked at
    /// import).
    pub fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let out_shape = self.output_shape(&shapes).expect("checked at import");
        let outer = volume(&out_shape[..self.axis]);
        let mut data = Vec::with_capacity(volume(&out_shape));
        for o in 0..outer {
            for t in inputs {
                let block = volume(&t.shape()[self.axis..]);
                data.extend_from_slice(&t.data()[o * block..(o + 1) * block]);
            }
        }
        Tensor::new(out_shape, data)
    }
}
