//! The IR's operators, one file per family. Each operator carries its checked
//! attributes; weights stay constant inputs of its node so that passes and the
//! compiler see them as tensors. Every operator infers its output shape (at
//! import, where errors name the node) and evaluates itself in `f64`.

pub mod activation;
pub mod conv;
pub mod elementwise;
pub mod linalg;
pub mod normalization;
pub mod pad;
pub mod pool;
pub mod select;
pub mod shape;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::tensor::{Shape, Tensor};

pub use activation::{Activation, Softmax};
pub use conv::Conv;
pub use elementwise::Binary;
pub use linalg::Gemm;
pub use normalization::BatchNormalization;
pub use pad::{Pad, PadMode};
pub use pool::{Pool, PoolKind};
pub use select::{Reduce, Select};
pub use shape::{Concat, Transpose};
pub use window::{AutoPad, Window};

/// An operator of the IR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `Add`, `Sub`, `Mul`, `Div`, `PRelu` with broadcasting.
    Binary(Binary),
    /// `x * x` (from `Mul(x, x)` or `Pow(x, 2)`).
    Square,
    /// `Pow` with a constant integer exponent.
    Pow {
        /// The power every element is raised to.
        exponent: i32,
    },
    /// `MatMul` with numpy semantics (1-D promotion, broadcast batch axes).
    MatMul,
    /// `Gemm`: a scaled, optionally transposed 2-D product plus a bias.
    Gemm(Gemm),
    /// `Conv`: grouped, strided, dilated, padded convolution.
    Conv(Conv),
    /// `AveragePool`, `MaxPool` and their global forms.
    Pool(Pool),
    /// `BatchNormalization` in inference mode, usually folded into the
    /// preceding `Conv` or `Gemm` by the simplifier.
    BatchNormalization(BatchNormalization),
    /// `Pad` in any mode; zero spatial pads are folded into a following
    /// `Conv` or `AveragePool` by the simplifier.
    Pad(Pad),
    /// `Flatten`, `Reshape`, `Squeeze`, `Unsqueeze`: a new static shape, same data.
    Reshape {
        /// The output shape, resolved statically at import.
        shape: Shape,
    },
    /// `Transpose`: a permutation of the axes.
    Transpose(Transpose),
    /// `Concat`: inputs joined along one axis.
    Concat(Concat),
    /// Every output element one input element: `Slice`, `Gather` with
    /// constant indices, `Split`, `Expand`, nearest `Resize`/`Upsample`.
    Select(Select),
    /// `ReduceMean`, `ReduceSum`.
    Reduce(Reduce),
    /// An element-wise nonlinearity (`Relu`, `Sigmoid`, `Clip`, ...).
    Activation(Activation),
    /// `Softmax` along an axis.
    Softmax(Softmax),
    /// `Identity`, and `Dropout` at inference; removed by the simplifier.
    Identity,
}

impl Op {
    /// Short name for listings.
    pub fn name(&self) -> String {
        match self {
            Op::Binary(b) => b.kind.name().to_string(),
            Op::Square => "Square".into(),
            Op::Pow { exponent } => format!("Pow^{exponent}"),
            Op::MatMul => "MatMul".into(),
            Op::Gemm(_) => "Gemm".into(),
            Op::Conv(_) => "Conv".into(),
            Op::Pool(p) => p.kind.name().into(),
            Op::BatchNormalization(_) => "BatchNormalization".into(),
            Op::Pad(_) => "Pad".into(),
            Op::Reshape { .. } => "Reshape".into(),
            Op::Transpose(_) => "Transpose".into(),
            Op::Concat(_) => "Concat".into(),
            Op::Select(s) => s.from.clone(),
            Op::Reduce(r) => if r.mean { "ReduceMean" } else { "ReduceSum" }.into(),
            Op::Activation(a) => a.name().into(),
            Op::Softmax(_) => "Softmax".into(),
            Op::Identity => "Identity".into(),
        }
    }

    /// The output shape for inputs of the given shapes, or why they don't fit.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let first = inputs.first().ok_or("operator has no input")?;
        match self {
            Op::Binary(b) => b.output_shape(inputs),
            Op::Square | Op::Pow { .. } | Op::Activation(_) | Op::Identity => Ok(first.to_vec()),
            Op::Softmax(s) => s.output_shape(first),
            Op::MatMul => linalg::matmul_shape(inputs),
            Op::Gemm(g) => g.output_shape(inputs),
            Op::Conv(c) => c.output_shape(inputs),
            Op::Pool(p) => p.output_shape(first),
            Op::BatchNormalization(b) => b.output_shape(inputs),
            Op::Pad(p) => p.output_shape(first),
            Op::Reshape { shape } => shape::reshape_shape(first, shape),
            Op::Transpose(t) => t.output_shape(first),
            Op::Concat(c) => c.output_shape(inputs),
            Op::Select(s) => s.output_shape(first),
            Op::Reduce(r) => r.output_shape(first),
        }
    }

    /// Evaluates the operator on inputs whose shapes passed [`Op::output_shape`].
    ///
    /// # Panics
    /// On inputs whose shapes [`Op::output_shape`] would refuse: the importer
    /// checks every node, so this is a bug, not bad input.
    pub fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let x = inputs[0];
        match self {
            Op::Binary(b) => b.eval(x, inputs[1]),
            Op::Square => x.map(|v| v * v),
            Op::Pow { exponent } => x.map(|v| v.powi(*exponent)),
            Op::MatMul => linalg::matmul(x, inputs[1]),
            Op::Gemm(g) => g.eval(inputs),
            Op::Conv(c) => c.eval(inputs),
            Op::Pool(p) => p.eval(x),
            Op::BatchNormalization(b) => b.eval(inputs),
            Op::Pad(p) => p.eval(x),
            Op::Reshape { shape } => x.clone().reshaped(shape.clone()),
            Op::Transpose(t) => t.eval(x),
            Op::Concat(c) => c.eval(inputs),
            Op::Select(s) => s.eval(x),
            Op::Reduce(r) => r.eval(x),
            Op::Activation(a) => a.eval(x),
            Op::Softmax(s) => s.eval(x),
            Op::Identity => x.clone(),
        }
    }
}

/// Resolves a possibly negative axis against a rank.
pub(crate) fn normalize_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    if axis < -r || axis >= r.max(1) {
        return Err(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}
