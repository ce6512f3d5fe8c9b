//! `BatchNormalization` in inference mode.

use serde::{Deserialize, Serialize};

use crate::tensor::{volume, Shape, Tensor};

/// `y = (x - mean) / sqrt(var + epsilon) * scale + bias` per channel (axis 1).
/// Inputs: `X [N, C, ..]`, `scale`, `bias`, `mean`, `var`, each `[C]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNormalization {
    /// Added to the variance so that a zero variance does not divide by zero.
    pub epsilon: f64,
}

impl BatchNormalization {
    /// The output shape (the input's), or why the inputs do not fit.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        if inputs.len() != 5 {
            return Err(format!(
                "BatchNormalization takes 5 inputs, got {}",
                inputs.len()
            ));
        }
        let x = inputs[0];
        if x.len() < 2 {
            return Err(format!("input must be at least 2-D [N, C, ..], got {x:?}"));
        }
        for (name, shape) in ["scale", "bias", "mean", "var"].iter().zip(&inputs[1..]) {
            if **shape != [x[1]] {
                return Err(format!("{name} of shape {shape:?}, expected [{}]", x[1]));
            }
        }
        Ok(x.to_vec())
    }

    /// Per-channel `(multiplier, offset)` with `y = multiplier * x + offset`.
    pub fn affine(
        &self,
        scale: &Tensor,
        bias: &Tensor,
        mean: &Tensor,
        var: &Tensor,
    ) -> Vec<(f64, f64)> {
        (0..scale.len())
            .map(|c| {
                let mul = scale.data()[c] / (var.data()[c] + self.epsilon).sqrt();
                (mul, bias.data()[c] - mean.data()[c] * mul)
            })
            .collect()
    }

    /// The normalisation of `X` with the given per-channel statistics.
    ///
    /// # Panics
    /// On inputs that [`BatchNormalization::output_shape`] refuses (checked
    /// at import).
    pub fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0];
        let affine = self.affine(inputs[1], inputs[2], inputs[3], inputs[4]);
        let channels = x.shape()[1];
        let inner = volume(&x.shape()[2..]);
        let mut out = x.clone();
        for (i, v) in out.data_mut().iter_mut().enumerate() {
            let (mul, add) = affine[(i / inner) % channels];
            *v = *v * mul + add;
        }
        out
    }
}
