//! Sliding-window geometry shared by `Conv` and the pools: kernel extent,
//! strides, dilations and explicit begin/end padding per spatial axis.

use serde::{Deserialize, Serialize};

use crate::tensor::{strides, volume};

/// The geometry of a sliding window over the spatial axes, one entry per
/// spatial axis in each field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The kernel extent.
    pub kernel: Vec<usize>,
    /// The step between consecutive windows.
    pub strides: Vec<usize>,
    /// The spacing between kernel taps (1: contiguous).
    pub dilations: Vec<usize>,
    /// Padding before the input; `auto_pad` is resolved to this at import.
    pub pads_begin: Vec<usize>,
    /// Padding after the input; `auto_pad` is resolved to this at import.
    pub pads_end: Vec<usize>,
    /// Output extents rounded up (pools only).
    pub ceil_mode: bool,
}

/// ONNX `auto_pad` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoPad {
    /// Explicit `pads` are used.
    NotSet,
    /// Pads keep `ceil(input / stride)` outputs; an odd total puts the extra
    /// element at the end.
    SameUpper,
    /// Pads keep `ceil(input / stride)` outputs; an odd total puts the extra
    /// element at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    /// The mode an `auto_pad` attribute names, `None` for an unknown value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "NOTSET" | "" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            _ => return None,
        })
    }

    /// Explicit begin/end pads for an input of spatial extents `input`;
    /// `None` for [`AutoPad::NotSet`], whose pads come from the `pads` attribute.
    pub fn resolve(
        self,
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
    ) -> Option<(Vec<usize>, Vec<usize>)> {
        let (mut begin, mut end) = (vec![0; input.len()], vec![0; input.len()]);
        match self {
            AutoPad::NotSet => return None,
            AutoPad::Valid => {}
            AutoPad::SameUpper | AutoPad::SameLower => {
                for axis in 0..input.len() {
                    let out = input[axis].div_ceil(strides[axis]);
                    let extent = (kernel[axis] - 1) * dilations[axis] + 1;
                    let total = ((out - 1) * strides[axis] + extent).saturating_sub(input[axis]);
                    let small = total / 2;
                    if self == AutoPad::SameUpper {
                        (begin[axis], end[axis]) = (small, total - small);
                    } else {
                        (begin[axis], end[axis]) = (total - small, small);
                    }
                }
            }
        }
        Some((begin, end))
    }
}

impl Window {
    /// The number of spatial axes.
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// Output spatial extents for input spatial extents `input`.
    pub fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        if input.len() != self.rank() {
            return Err(format!(
                "{}-D window on {}-D spatial input {input:?}",
                self.rank(),
                input.len()
            ));
        }
        (0..self.rank())
            .map(|axis| {
                let padded = input[axis] + self.pads_begin[axis] + self.pads_end[axis];
                let extent = (self.kernel[axis] - 1) * self.dilations[axis] + 1;
                if padded < extent {
                    return Err(format!(
                        "kernel extent {extent} exceeds padded input {padded} on spatial axis {axis}"
                    ));
                }
                let span = padded - extent;
                let stride = self.strides[axis];
                let mut out = if self.ceil_mode {
                    span.div_ceil(stride) + 1
                } else {
                    span / stride + 1
                };
                // A window may not start in the end padding only.
                if self.ceil_mode && (out - 1) * stride >= input[axis] + self.pads_begin[axis] {
                    out -= 1;
                }
                Ok(out)
            })
            .collect()
    }

    /// Kernel offsets (in kernel coordinates) in row-major order.
    pub fn kernel_positions(&self) -> Vec<Vec<usize>> {
        let kstrides = strides(&self.kernel);
        (0..volume(&self.kernel))
            .map(|flat| {
                (0..self.rank())
                    .map(|axis| (flat / kstrides[axis]) % self.kernel[axis])
                    .collect()
            })
            .collect()
    }

    /// Input coordinate on `axis` of kernel offset `k` for output coordinate
    /// `out`, possibly outside `[0, input)` (in the padding).
    pub fn input_coord(&self, axis: usize, out: usize, k: usize) -> isize {
        (out * self.strides[axis] + k * self.dilations[axis]) as isize
            - self.pads_begin[axis] as isize
    }
}
