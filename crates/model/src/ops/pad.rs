//! `Pad` in constant, edge, reflect and wrap modes; negative pads crop.

use serde::{Deserialize, Serialize};

use crate::tensor::{strides, volume, Shape, Tensor};

/// How `Pad` fills the added elements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PadMode {
    /// Every added element is this value.
    Constant(f64),
    /// The nearest edge element is repeated.
    Edge,
    /// The input is mirrored about its edge elements (which are not repeated).
    Reflect,
    /// Opset 19: the input repeats periodically.
    Wrap,
}

/// `Pad`, with the pads resolved to every axis of the input at import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    /// How the added elements are filled.
    pub mode: PadMode,
    /// Per axis of the input, elements added before (negative: removed).
    pub begin: Vec<i64>,
    /// Per axis of the input, elements added after (negative: removed).
    pub end: Vec<i64>,
}

impl Pad {
    /// The padded shape, or why the pads do not fit the input.
    pub fn output_shape(&self, x: &[usize]) -> Result<Shape, String> {
        if self.begin.len() != x.len() {
            return Err(format!(
                "{} pads per side for a rank {} input {x:?}",
                self.begin.len(),
                x.len()
            ));
        }
        (0..x.len())
            .map(|axis| {
                let out = x[axis] as i64 + self.begin[axis] + self.end[axis];
                let reflect_limit = x[axis] as i64 - 1;
                if out <= 0 {
                    Err(format!(
                        "pads remove all of axis {axis} (extent {})",
                        x[axis]
                    ))
                } else if self.mode == PadMode::Reflect
                    && (self.begin[axis] > reflect_limit || self.end[axis] > reflect_limit)
                {
                    Err(format!(
                        "reflect pads {}/{} on axis {axis} need an extent above them, input has {}",
                        self.begin[axis], self.end[axis], x[axis]
                    ))
                } else {
                    Ok(out as usize)
                }
            })
            .collect()
    }

    /// The padded (or cropped) tensor.
    ///
    /// # Panics
    /// When [`Pad::output_shape`] refuses the input's shape (checked at import).
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let out_shape = self.output_shape(x.shape()).expect("checked at import");
        let in_shape = x.shape();
        let (in_strides, out_strides) = (strides(in_shape), strides(&out_shape));
        let data = (0..volume(&out_shape))
            .map(|flat| {
                let mut src = 0usize;
                for axis in 0..out_shape.len() {
                    let o = ((flat / out_strides[axis]) % out_shape[axis]) as i64;
                    let extent = in_shape[axis] as i64;
                    let mut i = o - self.begin[axis];
                    if i < 0 || i >= extent {
                        i = match self.mode {
                            PadMode::Constant(value) => return value,
                            PadMode::Edge => i.clamp(0, extent - 1),
                            PadMode::Reflect if i < 0 => -i,
                            PadMode::Reflect => 2 * (extent - 1) - i,
                            PadMode::Wrap => i.rem_euclid(extent),
                        };
                    }
                    src += i as usize * in_strides[axis];
                }
                x.data()[src]
            })
            .collect();
        Tensor::new(out_shape, data)
    }

    /// Whether this pads spatial axes (2..) with zeros only, by non-negative
    /// amounts: such a pad can be folded into a following Conv or pool.
    /// Returns the spatial begin and end pads if so, `None` otherwise.
    pub fn spatial_zero_pads(&self) -> Option<(Vec<usize>, Vec<usize>)> {
        let zero = matches!(self.mode, PadMode::Constant(v) if v == 0.0);
        let untouched = self.begin.len() >= 2
            && self.begin[..2]
                .iter()
                .chain(&self.end[..2])
                .all(|&p| p == 0);
        let non_negative = self.begin.iter().chain(&self.end).all(|&p| p >= 0);
        (zero && untouched && non_negative).then(|| {
            (
                self.begin[2..].iter().map(|&p| p as usize).collect(),
                self.end[2..].iter().map(|&p| p as usize).collect(),
            )
        })
    }
}
