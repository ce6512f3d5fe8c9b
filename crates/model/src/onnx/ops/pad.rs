use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{normalize_axis, Op, Pad, PadMode};

/// `Pad`: pads and value are attributes before opset 11 and constant inputs
/// from 11 on; opset 18 adds the optional `axes` input.
pub fn pad(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let rank = ctx.input_shape(0)?.len();
    let (pads, value, axes) = if ctx.opset < 11 {
        ctx.allow_attributes(&["mode", "pads", "value"])?;
        let pads = ctx
            .ints("pads")?
            .ok_or_else(|| ctx.error("pads is required"))?;
        (pads, ctx.float("value", 0.0)?, None)
    } else {
        ctx.allow_attributes(&["mode"])?;
        let pads = ctx
            .constant_ints(1, "pads")?
            .ok_or_else(|| ctx.error("pads (input 1) is required"))?;
        let value = ctx.constant_scalar(2, "constant_value")?.unwrap_or(0.0);
        (pads, value, ctx.constant_ints(3, "axes")?)
    };
    let axes: Vec<usize> = match axes {
        None => (0..rank).collect(),
        Some(axes) => axes
            .iter()
            .map(|&a| normalize_axis(a, rank).map_err(|m| ctx.error(m)))
            .collect::<Result<_, _>>()?,
    };
    if pads.len() != 2 * axes.len() {
        return Err(ctx.error(format!(
            "{} pads for {} axes (expected {})",
            pads.len(),
            axes.len(),
            2 * axes.len()
        )));
    }
    let (mut begin, mut end) = (vec![0; rank], vec![0; rank]);
    for (i, &axis) in axes.iter().enumerate() {
        begin[axis] = pads[i];
        end[axis] = pads[axes.len() + i];
    }
    let mode = match ctx.string("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant(value),
        "edge" => PadMode::Edge,
        "reflect" => PadMode::Reflect,
        "wrap" if ctx.opset >= 19 => PadMode::Wrap,
        other => {
            return Err(ctx.error(format!(
                "mode '{other}' is not supported at opset {}",
                ctx.opset
            )))
        }
    };
    Ok(Parsed::leading(Op::Pad(Pad { mode, begin, end }), 1))
}
