//! Reshapes, `Transpose`, `Concat`, `Constant`, `Identity`, `Dropout`.

use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{normalize_axis, Concat, Op, Transpose};
use crate::tensor::{volume, Tensor};

fn reshape_to(shape: Vec<usize>) -> Parsed {
    Parsed::leading(Op::Reshape { shape }, 1)
}

pub fn flatten(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["axis"])?;
    let x = ctx.input_shape(0)?;
    let axis = ctx.int("axis", 1)?;
    // Flatten accepts axis == rank (everything in the first dimension).
    let axis = if axis == x.len() as i64 {
        x.len()
    } else {
        normalize_axis(axis, x.len()).map_err(|m| ctx.error(m))?
    };
    Ok(reshape_to(vec![volume(&x[..axis]), volume(&x[axis..])]))
}

pub fn reshape(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["allowzero"])?;
    let x = ctx.input_shape(0)?;
    let target = ctx
        .constant_ints(1, "the target shape")?
        .ok_or_else(|| ctx.error("the target shape (input 1) is required"))?;
    let allow_zero = ctx.int("allowzero", 0)? == 1;
    let mut shape = Vec::with_capacity(target.len());
    let mut inferred = None;
    for (axis, &d) in target.iter().enumerate() {
        match d {
            -1 if inferred.is_none() => {
                inferred = Some(axis);
                shape.push(1);
            }
            0 if !allow_zero => shape.push(*x.get(axis).ok_or_else(|| {
                ctx.error(format!(
                    "shape {target:?} copies axis {axis} the input {x:?} lacks"
                ))
            })?),
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(ctx.error(format!("invalid target shape {target:?}"))),
        }
    }
    if let Some(axis) = inferred {
        let known = volume(&shape);
        if known == 0 || !volume(x).is_multiple_of(known) {
            return Err(ctx.error(format!("cannot reshape {x:?} to {target:?}")));
        }
        shape[axis] = volume(x) / known;
    }
    if volume(&shape) != volume(x) {
        return Err(ctx.error(format!("cannot reshape {x:?} to {target:?}")));
    }
    Ok(reshape_to(shape))
}

/// Axes from the `axes` attribute (before opset 13) or input 1 (from 13 on).
fn axes(ctx: &NodeContext) -> Result<Option<Vec<i64>>, ModelError> {
    if ctx.opset < 13 {
        ctx.allow_attributes(&["axes"])?;
        ctx.ints("axes")
    } else {
        ctx.allow_attributes(&[])?;
        ctx.constant_ints(1, "axes")
    }
}

pub fn squeeze(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let x = ctx.input_shape(0)?;
    let axes = match axes(ctx)? {
        None => (0..x.len()).filter(|&a| x[a] == 1).collect(),
        Some(axes) => axes
            .iter()
            .map(|&a| normalize_axis(a, x.len()).map_err(|m| ctx.error(m)))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(&a) = axes.iter().find(|&&a| x[a] != 1) {
        return Err(ctx.error(format!(
            "cannot squeeze axis {a} of extent {} in {x:?}",
            x[a]
        )));
    }
    let shape = (0..x.len())
        .filter(|a| !axes.contains(a))
        .map(|a| x[a])
        .collect();
    Ok(reshape_to(shape))
}

pub fn unsqueeze(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let x = ctx.input_shape(0)?;
    let axes = axes(ctx)?.ok_or_else(|| ctx.error("axes are required"))?;
    let rank = x.len() + axes.len();
    let mut inserted = vec![false; rank];
    for &a in &axes {
        let axis = normalize_axis(a, rank).map_err(|m| ctx.error(m))?;
        if std::mem::replace(&mut inserted[axis], true) {
            return Err(ctx.error(format!("axis {a} repeated in {axes:?}")));
        }
    }
    let mut rest = x.iter();
    let shape = inserted
        .iter()
        .map(|&new| {
            if new {
                1
            } else {
                *rest.next().expect("rank counted")
            }
        })
        .collect();
    Ok(reshape_to(shape))
}

pub fn transpose(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["perm"])?;
    let rank = ctx.input_shape(0)?.len();
    let perm = match ctx.ints("perm")? {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| ctx.error(format!("invalid perm {p:?}"))))
            .collect::<Result<_, _>>()?,
    };
    Ok(Parsed::leading(Op::Transpose(Transpose { perm }), 1))
}

pub fn concat(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["axis"])?;
    if !ctx.has("axis") {
        return Err(ctx.error("axis is required"));
    }
    let rank = ctx.input_shape(0)?.len();
    let axis = normalize_axis(ctx.int("axis", 0)?, rank).map_err(|m| ctx.error(m))?;
    Ok(Parsed::leading(
        Op::Concat(Concat { axis }),
        ctx.input_count(),
    ))
}

pub fn constant(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
    ])?;
    let ints = |v: Vec<i64>| Tensor::new(vec![v.len()], v.iter().map(|&x| x as f64).collect());
    let tensor = if let Some(t) = ctx.tensor("value")? {
        t
    } else if ctx.has("value_float") {
        Tensor::scalar(ctx.float("value_float", 0.0)?)
    } else if let Some(v) = ctx.floats("value_floats")? {
        Tensor::new(vec![v.len()], v.iter().map(|&x| x as f64).collect())
    } else if ctx.has("value_int") {
        Tensor::scalar(ctx.int("value_int", 0)? as f64)
    } else if let Some(v) = ctx.ints("value_ints")? {
        ints(v)
    } else {
        return Err(ctx.error("no value attribute (value, value_float(s), value_int(s))"));
    };
    Ok(Parsed::Constant(tensor))
}

pub fn identity(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[])?;
    Ok(Parsed::leading(Op::Identity, 1))
}

/// `Dropout` at inference is the identity; a constant `training_mode` of true
/// is refused.
pub fn dropout(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["ratio", "seed", "is_test"])?;
    if ctx.opset >= 12 {
        if let Some(training) = ctx.constant_scalar(2, "training_mode")? {
            if training != 0.0 {
                return Err(ctx.error("training_mode is true (inference only)"));
            }
        }
    }
    Ok(Parsed::leading(Op::Identity, 1))
}
