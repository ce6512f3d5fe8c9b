//! The operator registry: one parser per ONNX operator, grouped by family as in
//! `crate::ops`. A parser checks attributes, turns constant inputs that act as
//! attributes (shapes, pads, axes, clip bounds) into operator fields, and says
//! which node inputs remain inputs of the IR operator.

mod activation;
mod conv;
mod elementwise;
mod linalg;
mod normalization;
mod pad;
mod select;
mod shape;

use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::ops::Op;
use crate::tensor::Tensor;

pub enum Parsed {
    /// An operator and the positions of the node inputs it reads, in order.
    Op { op: Op, inputs: Vec<usize> },
    /// The node is a constant (`Constant`).
    Constant(Tensor),
    /// One operator per node output, each reading the node's first input
    /// (`Split`).
    Outputs(Vec<Op>),
}

impl Parsed {
    /// An operator reading the node's first `count` inputs.
    fn leading(op: Op, count: usize) -> Self {
        Parsed::Op {
            op,
            inputs: (0..count).collect(),
        }
    }
}

type Parser = fn(&NodeContext) -> Result<Parsed, ModelError>;

const REGISTRY: &[(&str, Parser)] = &[
    ("Add", elementwise::add),
    ("Sub", elementwise::sub),
    ("Mul", elementwise::mul),
    ("Div", elementwise::div),
    ("PRelu", elementwise::prelu),
    ("Pow", elementwise::pow),
    ("MatMul", linalg::matmul),
    ("Gemm", linalg::gemm),
    ("Conv", conv::conv),
    ("AveragePool", conv::average_pool),
    ("MaxPool", conv::max_pool),
    ("GlobalAveragePool", conv::global_average_pool),
    ("GlobalMaxPool", conv::global_max_pool),
    ("BatchNormalization", normalization::batch_normalization),
    ("Pad", pad::pad),
    ("Flatten", shape::flatten),
    ("Reshape", shape::reshape),
    ("Squeeze", shape::squeeze),
    ("Unsqueeze", shape::unsqueeze),
    ("Transpose", shape::transpose),
    ("Concat", shape::concat),
    ("Constant", shape::constant),
    ("Identity", shape::identity),
    ("Dropout", shape::dropout),
    ("Relu", activation::relu),
    ("LeakyRelu", activation::leaky_relu),
    ("Sigmoid", activation::sigmoid),
    ("Tanh", activation::tanh),
    ("Sign", activation::sign),
    ("Clip", activation::clip),
    ("HardSigmoid", activation::hard_sigmoid),
    ("HardSwish", activation::hard_swish),
    ("Softplus", activation::softplus),
    ("Erf", activation::erf),
    ("Gelu", activation::gelu),
    ("Elu", activation::elu),
    ("Softmax", activation::softmax),
    ("Slice", select::slice),
    ("Gather", select::gather),
    ("Split", select::split),
    ("Expand", select::expand),
    ("Resize", select::resize),
    ("Upsample", select::resize),
    ("ReduceMean", select::reduce_mean),
    ("ReduceSum", select::reduce_sum),
];

pub(crate) fn parser(op_type: &str) -> Option<Parser> {
    REGISTRY
        .iter()
        .find(|(name, _)| *name == op_type)
        .map(|(_, parser)| *parser)
}

/// Names of the ONNX operators heman imports.
pub fn supported_operators() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}
