use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::elementwise::{Binary, BinaryKind};
use crate::ops::Op;

fn binary(ctx: &NodeContext, kind: BinaryKind) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[])?;
    if ctx.input_count() != 2 {
        return Err(ctx.error(format!("takes 2 inputs, has {}", ctx.input_count())));
    }
    Ok(Parsed::leading(Op::Binary(Binary { kind }), 2))
}

pub fn add(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    binary(ctx, BinaryKind::Add)
}

pub fn sub(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    binary(ctx, BinaryKind::Sub)
}

pub fn mul(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    binary(ctx, BinaryKind::Mul)
}

pub fn div(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    binary(ctx, BinaryKind::Div)
}

pub fn prelu(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    binary(ctx, BinaryKind::PRelu)
}

/// `Pow` with a constant integer exponent (all elements equal).
pub fn pow(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[])?;
    let exponent = ctx
        .optional_constant(1, "the exponent")?
        .ok_or_else(|| ctx.error("the exponent (input 1) is required"))?;
    let first = exponent.data().first().copied().unwrap_or(f64::NAN);
    if exponent.data().iter().any(|&e| e != first) || first.fract() != 0.0 || first.abs() > 64.0 {
        return Err(ctx.error(format!(
            "the exponent must be one integer in [-64, 64], got {:?}",
            exponent.data()
        )));
    }
    let shape = ctx.input_shape(0)?;
    if crate::tensor::broadcast_shapes(shape, exponent.shape()).as_deref() != Some(shape) {
        return Err(ctx.error(format!(
            "exponent of shape {:?} would broadcast the input {shape:?}",
            exponent.shape()
        )));
    }
    let op = if first == 2.0 {
        Op::Square
    } else {
        Op::Pow {
            exponent: first as i32,
        }
    };
    Ok(Parsed::leading(op, 1))
}
