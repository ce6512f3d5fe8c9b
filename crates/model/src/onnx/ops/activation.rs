use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{Activation, Op, Softmax};

fn activation(
    ctx: &NodeContext,
    activation: Activation,
    known: &[&str],
) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(known)?;
    Ok(Parsed::leading(Op::Activation(activation), 1))
}

pub fn relu(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::Relu, &[])
}

pub fn leaky_relu(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let alpha = ctx.float("alpha", 0.01)?;
    activation(ctx, Activation::LeakyRelu { alpha }, &["alpha"])
}

pub fn sigmoid(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::Sigmoid, &[])
}

pub fn tanh(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::Tanh, &[])
}

pub fn sign(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::Sign, &[])
}

/// `Clip`: bounds are attributes before opset 11, optional constant inputs after.
pub fn clip(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let (min, max) = if ctx.opset < 11 {
        (
            ctx.float("min", f64::NEG_INFINITY)?,
            ctx.float("max", f64::INFINITY)?,
        )
    } else {
        (
            ctx.constant_scalar(1, "min")?.unwrap_or(f64::NEG_INFINITY),
            ctx.constant_scalar(2, "max")?.unwrap_or(f64::INFINITY),
        )
    };
    let known: &[&str] = if ctx.opset < 11 { &["min", "max"] } else { &[] };
    activation(ctx, Activation::Clip { min, max }, known)
}

pub fn hard_sigmoid(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let alpha = ctx.float("alpha", 0.2)?;
    let beta = ctx.float("beta", 0.5)?;
    activation(
        ctx,
        Activation::HardSigmoid { alpha, beta },
        &["alpha", "beta"],
    )
}

pub fn hard_swish(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::HardSwish, &[])
}

pub fn softplus(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::Softplus, &[])
}

pub fn erf(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    activation(ctx, Activation::Erf, &[])
}

/// `Gelu` (opset 20): `approximate` is "none" or "tanh".
pub fn gelu(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let tanh = match ctx.string("approximate", "none")?.as_str() {
        "none" => false,
        "tanh" => true,
        other => {
            return Err(ctx.error(format!(
                "approximate = '{other}' (expected 'none' or 'tanh')"
            )))
        }
    };
    activation(ctx, Activation::Gelu { tanh }, &["approximate"])
}

pub fn elu(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let alpha = ctx.float("alpha", 1.0)?;
    activation(ctx, Activation::Elu { alpha }, &["alpha"])
}

pub fn softmax(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["axis"])?;
    let legacy = ctx.opset < 13;
    let axis = ctx.int("axis", if legacy { 1 } else { -1 })?;
    let op = Op::Softmax(Softmax {
        axis,
        coerce_2d: legacy,
    });
    Ok(Parsed::leading(op, 1))
}
