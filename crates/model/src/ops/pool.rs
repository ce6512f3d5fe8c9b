//! `AveragePool`, `MaxPool` and `GlobalAveragePool`.

use serde::{Deserialize, Serialize};

use crate::ops::window::Window;
use crate::tensor::{strides, volume, Shape, Tensor};

/// What a pool computes over each window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PoolKind {
    /// The mean of the window's elements.
    Average {
        /// Whether padding positions count in the divisor (they contribute
        /// zeros to the sum either way).
        count_include_pad: bool,
    },
    /// The largest of the window's elements; padding is ignored.
    Max,
}

impl PoolKind {
    /// The ONNX operator name, for listings.
    pub fn name(&self) -> &'static str {
        match self {
            PoolKind::Average { .. } => "AveragePool",
            PoolKind::Max => "MaxPool",
        }
    }
}

/// A pooling operator: a reduction over sliding windows of each channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Which reduction the pool computes.
    pub kind: PoolKind,
    /// Global pools have a window covering the whole input (set at import).
    pub window: Window,
}

impl Pool {
    /// The output shape `[N, C, spatial..]`, or why the input does not fit.
    pub fn output_shape(&self, x: &[usize]) -> Result<Shape, String> {
        let rank = self.window.rank();
        if x.len() != rank + 2 {
            return Err(format!(
                "{rank}-D pooling needs a rank {} input [N, C, ...], got {x:?}",
                rank + 2
            ));
        }
        let mut out = x[..2].to_vec();
        out.extend(self.window.output_dims(&x[2..])?);
        Ok(out)
    }

    /// Per output position (row-major over the output's spatial extents):
    /// the flat spatial offsets of the taps inside the input, and how many
    /// taps lie inside the padded input (the divisor with `count_include_pad`).
    fn taps(&self, in_spatial: &[usize], out_spatial: &[usize]) -> Vec<(Vec<usize>, usize)> {
        let in_strides = strides(in_spatial);
        let out_strides = strides(out_spatial);
        let kernel_positions = self.window.kernel_positions();
        let mut coords = vec![0usize; out_spatial.len()];
        (0..volume(out_spatial))
            .map(|pos| {
                for (axis, coord) in coords.iter_mut().enumerate() {
                    *coord = (pos / out_strides[axis]) % out_spatial[axis];
                }
                let mut taps = Vec::with_capacity(kernel_positions.len());
                let mut padded_count = 0usize;
                for k in &kernel_positions {
                    let mut flat = Some(0);
                    let mut in_padded_range = true;
                    for axis in 0..coords.len() {
                        let i = self.window.input_coord(axis, coords[axis], k[axis]);
                        let limit = (in_spatial[axis] + self.window.pads_end[axis]) as isize;
                        if i < -(self.window.pads_begin[axis] as isize) || i >= limit {
                            in_padded_range = false;
                        }
                        if i < 0 || i as usize >= in_spatial[axis] {
                            flat = None;
                        } else if let Some(f) = flat.as_mut() {
                            *f += i as usize * in_strides[axis];
                        }
                    }
                    padded_count += in_padded_range as usize;
                    if let Some(f) = flat {
                        taps.push(f);
                    }
                }
                (taps, padded_count)
            })
            .collect()
    }

    /// For each output element (row-major over `[N, C, spatial..]`), the flat
    /// indices of the input elements its window covers (padding excluded).
    ///
    /// # Panics
    /// When [`Pool::output_shape`] refuses `input_shape` (checked at import).
    pub fn windows(&self, input_shape: &[usize]) -> Vec<Vec<usize>> {
        let out_shape = self.output_shape(input_shape).expect("checked at import");
        let (in_spatial, out_spatial) = (&input_shape[2..], &out_shape[2..]);
        let in_volume = volume(in_spatial);
        let taps = self.taps(in_spatial, out_spatial);
        let planes = input_shape[0] * input_shape[1];
        (0..planes)
            .flat_map(|plane| {
                taps.iter()
                    .map(move |(t, _)| t.iter().map(|&f| plane * in_volume + f).collect())
            })
            .collect()
    }

    /// The pooled tensor.
    ///
    /// # Panics
    /// When [`Pool::output_shape`] refuses the input's shape (checked at import).
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let out_shape = self.output_shape(x.shape()).expect("checked at import");
        let in_spatial = &x.shape()[2..];
        let out_spatial = &out_shape[2..];
        let (in_volume, out_volume) = (volume(in_spatial), volume(out_spatial));
        let planes = x.shape()[0] * x.shape()[1];
        let mut out = vec![0.0; planes * out_volume];
        for (pos, (taps, padded_count)) in self.taps(in_spatial, out_spatial).iter().enumerate() {
            for plane in 0..planes {
                let base = plane * in_volume;
                let values = taps.iter().map(|&t| x.data()[base + t]);
                out[plane * out_volume + pos] = match self.kind {
                    PoolKind::Max => values.fold(f64::NEG_INFINITY, f64::max),
                    PoolKind::Average { count_include_pad } => {
                        let divisor = if count_include_pad {
                            *padded_count
                        } else {
                            taps.len()
                        };
                        values.sum::<f64>() / divisor.max(1) as f64
                    }
                };
            }
        }
        Tensor::new(out_shape, out)
    }
}
