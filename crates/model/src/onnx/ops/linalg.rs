use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{Gemm, Op};

pub fn matmul(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[])?;
    Ok(Parsed::leading(Op::MatMul, 2))
}

pub fn gemm(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["alpha", "beta", "transA", "transB"])?;
    let flag = |name: &str| -> Result<bool, ModelError> {
        match ctx.int(name, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(ctx.error(format!("{name} must be 0 or 1, got {v}"))),
        }
    };
    let op = Op::Gemm(Gemm {
        alpha: ctx.float("alpha", 1.0)?,
        beta: ctx.float("beta", 1.0)?,
        trans_a: flag("transA")?,
        trans_b: flag("transB")?,
    });
    let has_c = ctx.inputs.get(2).copied().flatten().is_some();
    Ok(Parsed::leading(op, if has_c { 3 } else { 2 }))
}
