//! `Conv`: N-d grouped (incl. depthwise), strided, dilated, padded convolution.

use serde::{Deserialize, Serialize};

use crate::ops::window::Window;
use crate::tensor::{strides, volume, Shape, Tensor};

/// A convolution; weights and bias stay constant inputs of its node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    /// The kernel geometry: extents, strides, dilations and padding.
    pub window: Window,
    /// How many groups the channels are split into (1: ordinary convolution,
    /// equal to the channel count: depthwise).
    pub group: usize,
}

impl Conv {
    /// The output shape `[N, M, spatial..]`, or why the inputs do not fit.
    /// Inputs: `X [N, C, spatial..]`, `W [M, C/group, kernel..]`, optional `B [M]`.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        if !(2..=3).contains(&inputs.len()) {
            return Err(format!("Conv takes 2 or 3 inputs, got {}", inputs.len()));
        }
        let (x, w) = (inputs[0], inputs[1]);
        let rank = self.window.rank();
        if x.len() != rank + 2 || w.len() != rank + 2 {
            return Err(format!(
                "{rank}-D convolution needs rank {} input and weight, got {x:?} and {w:?}",
                rank + 2
            ));
        }
        if w[2..] != self.window.kernel[..] {
            return Err(format!(
                "weight {w:?} disagrees with kernel_shape {:?}",
                self.window.kernel
            ));
        }
        let (c, m) = (x[1], w[0]);
        if self.group == 0 || c % self.group != 0 || m % self.group != 0 {
            return Err(format!(
                "group {} does not divide input channels {c} and output channels {m}",
                self.group
            ));
        }
        if w[1] != c / self.group {
            return Err(format!(
                "weight {w:?} expects {} input channels per group, input has {c} channels in {} group(s)",
                w[1], self.group
            ));
        }
        if let Some(b) = inputs.get(2) {
            if **b != [m] {
                return Err(format!("bias of shape {b:?}, expected [{m}]"));
            }
        }
        let mut out = vec![x[0], m];
        out.extend(self.window.output_dims(&x[2..])?);
        Ok(out)
    }

    /// The convolution of `X` with `W`, plus `B` when given.
    ///
    /// # Panics
    /// On inputs that [`Conv::output_shape`] refuses (checked at import).
    pub fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let (x, w) = (inputs[0], inputs[1]);
        let out_shape = self
            .output_shape(&inputs.iter().map(|t| t.shape()).collect::<Vec<_>>())
            .expect("checked at import");
        let (batch, c, m) = (x.shape()[0], x.shape()[1], w.shape()[0]);
        let (c_per_group, m_per_group) = (c / self.group, m / self.group);
        let in_spatial = &x.shape()[2..];
        let out_spatial = &out_shape[2..];
        let in_volume = volume(in_spatial);
        let in_strides = strides(in_spatial);
        let out_strides = strides(out_spatial);
        let kernel_positions = self.window.kernel_positions();
        let kernel_volume = kernel_positions.len();
        let out_volume = volume(out_spatial);
        let mut out = vec![0.0; volume(&out_shape)];
        let mut coords = vec![0usize; out_spatial.len()];
        for pos in 0..out_volume {
            for (axis, coord) in coords.iter_mut().enumerate() {
                *coord = (pos / out_strides[axis]) % out_spatial[axis];
            }
            // Flat input offsets of each kernel tap at this output position
            // (None in the padding).
            let taps: Vec<Option<usize>> = kernel_positions
                .iter()
                .map(|k| {
                    let mut flat = 0;
                    for axis in 0..coords.len() {
                        let i = self.window.input_coord(axis, coords[axis], k[axis]);
                        if i < 0 || i as usize >= in_spatial[axis] {
                            return None;
                        }
                        flat += i as usize * in_strides[axis];
                    }
                    Some(flat)
                })
                .collect();
            for n in 0..batch {
                for oc in 0..m {
                    let g = oc / m_per_group;
                    let mut acc = inputs.get(2).map_or(0.0, |b| b.data()[oc]);
                    for icg in 0..c_per_group {
                        let ic = g * c_per_group + icg;
                        let x_base = (n * c + ic) * in_volume;
                        let w_base = (oc * c_per_group + icg) * kernel_volume;
                        for (t, tap) in taps.iter().enumerate() {
                            if let Some(offset) = tap {
                                acc += x.data()[x_base + offset] * w.data()[w_base + t];
                            }
                        }
                    }
                    out[(n * m + oc) * out_volume + pos] = acc;
                }
            }
        }
        Tensor::new(out_shape, out)
    }
}
