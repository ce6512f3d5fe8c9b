//! `Slice`, `Gather`, `Split`, `Expand`, `Resize`, `Upsample`: selections
//! with indices known at import; `ReduceMean`, `ReduceSum`.

use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{normalize_axis, Op, Reduce, Select};
use crate::tensor::broadcast_shapes;

fn select(ctx: &NodeContext, select: Result<Select, String>) -> Result<Parsed, ModelError> {
    Ok(Parsed::leading(
        Op::Select(select.map_err(|m| ctx.error(m))?),
        1,
    ))
}

/// Resolves axes against the input's rank (all axes when none are given).
fn axes(ctx: &NodeContext, given: Option<Vec<i64>>, rank: usize) -> Result<Vec<usize>, ModelError> {
    match given {
        None => Ok((0..rank).collect()),
        Some(list) => {
            let mut axes = list
                .iter()
                .map(|&a| normalize_axis(a, rank))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| ctx.error(m))?;
            axes.sort_unstable();
            if axes.windows(2).any(|w| w[0] == w[1]) {
                return Err(ctx.error(format!("axes {list:?} repeat an axis")));
            }
            Ok(axes)
        }
    }
}

/// `Slice`: starts, ends, axes, steps as attributes before opset 10, as
/// constant inputs after; bounds clamped as the ONNX spec says.
pub fn slice(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let x = ctx.input_shape(0)?.to_vec();
    let (starts, ends, axes_given, steps) = if ctx.opset < 10 {
        ctx.allow_attributes(&["starts", "ends", "axes"])?;
        (
            ctx.ints("starts")?,
            ctx.ints("ends")?,
            ctx.ints("axes")?,
            None,
        )
    } else {
        ctx.allow_attributes(&[])?;
        (
            ctx.constant_ints(1, "starts")?,
            ctx.constant_ints(2, "ends")?,
            ctx.constant_ints(3, "axes")?,
            ctx.constant_ints(4, "steps")?,
        )
    };
    let (starts, ends) = starts
        .zip(ends)
        .ok_or_else(|| ctx.error("starts and ends are required"))?;
    let axes_list: Vec<i64> = axes_given.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if [ends.len(), axes_list.len(), steps.len()]
        .iter()
        .any(|&n| n != starts.len())
    {
        return Err(ctx.error("starts, ends, axes and steps differ in length"));
    }
    // Per axis: first index and step; the output extent.
    let mut first = vec![0i64; x.len()];
    let mut step = vec![1i64; x.len()];
    let mut shape = x.clone();
    for k in 0..starts.len() {
        let a = normalize_axis(axes_list[k], x.len()).map_err(|m| ctx.error(m))?;
        let (n, s) = (x[a] as i64, steps[k]);
        if s == 0 {
            return Err(ctx.error("a step of 0"));
        }
        let resolve = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (lo, hi) = if s > 0 { (0, n) } else { (-1, n - 1) };
        let start = resolve(starts[k]).clamp(lo, hi);
        let end = resolve(ends[k]).clamp(lo, hi);
        // Elements from `start` towards `end` (exclusive) by `|s|`.
        let (span, stride) = if s > 0 {
            (end - start, s)
        } else {
            (start - end, -s)
        };
        let extent = (span.max(0) + stride - 1) / stride;
        (first[a], step[a], shape[a]) = (start, s, extent as usize);
    }
    select(
        ctx,
        Select::new("Slice", &x, shape, |o| {
            o.iter()
                .enumerate()
                .map(|(a, &i)| (first[a] + step[a] * i as i64) as usize)
                .collect()
        }),
    )
}

/// `Gather` with constant indices (negative ones count from the end).
pub fn gather(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["axis"])?;
    let x = ctx.input_shape(0)?.to_vec();
    let axis = normalize_axis(ctx.int("axis", 0)?, x.len()).map_err(|m| ctx.error(m))?;
    let indices = ctx
        .optional_constant(1, "the indices")?
        .ok_or_else(|| ctx.error("the indices (input 1) are required"))?;
    let n = x[axis] as i64;
    let resolved = indices
        .data()
        .iter()
        .map(|&v| {
            let i = v as i64;
            let i = if i < 0 { i + n } else { i };
            (0..n)
                .contains(&i)
                .then_some(i as usize)
                .ok_or_else(|| ctx.error(format!("index {v} outside axis {axis} of {x:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rank = indices.shape().len();
    let shape: Vec<usize> = x[..axis]
        .iter()
        .chain(indices.shape())
        .chain(&x[axis + 1..])
        .copied()
        .collect();
    let index_strides = crate::tensor::strides(indices.shape());
    select(
        ctx,
        Select::new("Gather", &x, shape, |o| {
            let flat: usize = (0..rank).map(|k| o[axis + k] * index_strides[k]).sum();
            o[..axis]
                .iter()
                .copied()
                .chain(std::iter::once(resolved[flat]))
                .chain(o[axis + rank..].iter().copied())
                .collect()
        }),
    )
}

/// `Split`: one selection per output, along `axis`, in the given sizes
/// (attribute before opset 13, constant input after) or equal parts.
pub fn split(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let x = ctx.input_shape(0)?.to_vec();
    let axis = normalize_axis(ctx.int("axis", 0)?, x.len()).map_err(|m| ctx.error(m))?;
    let outputs = ctx.node.output.len();
    let sizes = if ctx.opset < 13 {
        ctx.allow_attributes(&["axis", "split"])?;
        ctx.ints("split")?
    } else {
        ctx.allow_attributes(&["axis", "num_outputs"])?;
        ctx.constant_ints(1, "the split sizes")?
    };
    let sizes: Vec<usize> = match sizes {
        Some(s) => s.iter().map(|&v| v.max(0) as usize).collect(),
        None => {
            let part = x[axis].div_ceil(outputs.max(1));
            (0..outputs)
                .map(|k| part.min(x[axis].saturating_sub(k * part)))
                .collect()
        }
    };
    if sizes.len() != outputs || sizes.iter().sum::<usize>() != x[axis] {
        return Err(ctx.error(format!(
            "split sizes {sizes:?} do not divide axis {axis} of {x:?} into {outputs} outputs"
        )));
    }
    let mut offset = 0;
    let mut ops = Vec::with_capacity(outputs);
    for size in sizes {
        let mut shape = x.clone();
        shape[axis] = size;
        let start = offset;
        let part = Select::new("Split", &x, shape, |o| {
            let mut i = o.to_vec();
            i[axis] += start;
            i
        })
        .map_err(|m| ctx.error(m))?;
        ops.push(Op::Select(part));
        offset += size;
    }
    Ok(Parsed::Outputs(ops))
}

/// `Expand` to a constant shape (numpy broadcasting).
pub fn expand(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[])?;
    let x = ctx.input_shape(0)?.to_vec();
    let target = ctx
        .constant_ints(1, "the shape")?
        .ok_or_else(|| ctx.error("the shape (input 1) is required"))?;
    let target: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
    let shape = broadcast_shapes(&x, &target)
        .ok_or_else(|| ctx.error(format!("cannot expand {x:?} to {target:?}")))?;
    let lead = shape.len() - x.len();
    select(
        ctx,
        Select::new("Expand", &x, shape, |o| {
            x.iter()
                .enumerate()
                .map(|(a, &n)| if n == 1 { 0 } else { o[lead + a] })
                .collect()
        }),
    )
}

/// The input index of output index `o` along an axis resized by `scale`
/// from `n_in` to `n_out` elements, as ONNX `Resize` in nearest mode maps it.
fn nearest(
    o: usize,
    scale: f64,
    (n_in, n_out): (usize, usize),
    transform: &str,
    rounding: &str,
) -> usize {
    let o = o as f64;
    let x = match transform {
        "asymmetric" => o / scale,
        "align_corners" if n_out > 1 => o * (n_in as f64 - 1.0) / (n_out as f64 - 1.0),
        "align_corners" => 0.0,
        "pytorch_half_pixel" if n_out == 1 => 0.0,
        // half_pixel and pytorch_half_pixel
        _ => (o + 0.5) / scale - 0.5,
    };
    let i = match rounding {
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round_prefer_ceil" => (x + 0.5).floor(),
        // round_prefer_floor
        _ => (x - 0.5).ceil(),
    };
    i.clamp(0.0, n_in as f64 - 1.0) as usize
}

/// `Resize` (opset 10 on) and `Upsample` in nearest mode, with constant
/// scales or sizes.
pub fn resize(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let x = ctx.input_shape(0)?.to_vec();
    let upsample = ctx.node.op_type == "Upsample";
    let (mode, transform, rounding) = if upsample || ctx.opset < 11 {
        ctx.allow_attributes(&["mode", "scales"])?;
        let mode = ctx.string("mode", "nearest")?;
        (mode, "asymmetric".to_string(), "floor".to_string())
    } else {
        ctx.allow_attributes(&[
            "mode",
            "coordinate_transformation_mode",
            "nearest_mode",
            "antialias",
            "axes",
            "cubic_coeff_a",
            "exclude_outside",
            "extrapolation_value",
            "keep_aspect_ratio_policy",
        ])?;
        if ctx.ints("axes")?.is_some() {
            return Err(ctx.error("the axes attribute is not supported"));
        }
        (
            ctx.string("mode", "nearest")?,
            ctx.string("coordinate_transformation_mode", "half_pixel")?,
            ctx.string("nearest_mode", "round_prefer_floor")?,
        )
    };
    if mode != "nearest" {
        return Err(ctx.error(format!("mode '{mode}' (only 'nearest' is supported)")));
    }
    if transform == "tf_crop_and_resize" {
        return Err(ctx.error("coordinate_transformation_mode 'tf_crop_and_resize'"));
    }
    let (scales, shape) = resize_scales(ctx, &x, upsample)?;
    select(
        ctx,
        Select::new(&ctx.node.op_type, &x, shape.clone(), |o| {
            (0..x.len())
                .map(|a| nearest(o[a], scales[a], (x[a], shape[a]), &transform, &rounding))
                .collect()
        }),
    )
}

/// The scale and output extent of every axis of a resize of `x`: from
/// constant scales (an attribute of Upsample-7, input 1 of Upsample-9 and
/// Resize-10, input 2 from Resize-11 on) or sizes (input 3).
fn resize_scales(
    ctx: &NodeContext,
    x: &[usize],
    upsample: bool,
) -> Result<(Vec<f64>, Vec<usize>), ModelError> {
    // Scales: an attribute (Upsample-7), input 1 (Upsample-9, Resize-10),
    // input 2 (Resize-11 on); or sizes, input 3.
    let scales_given: Option<Vec<f64>> = if upsample && ctx.opset < 9 {
        ctx.floats("scales")?
            .map(|v| v.iter().map(|&s| s as f64).collect())
    } else {
        let at = if upsample || ctx.opset < 11 { 1 } else { 2 };
        ctx.optional_constant(at, "the scales")?
            .filter(|t| !t.is_empty())
            .map(|t| t.data().to_vec())
    };
    let sizes = if upsample || ctx.opset < 11 {
        None
    } else {
        ctx.constant_ints(3, "the sizes")?
    };
    match (scales_given, sizes) {
        (Some(scales), _) if scales.len() == x.len() && scales.iter().all(|&s| s > 0.0) => {
            let shape = x
                .iter()
                .zip(&scales)
                .map(|(&n, &s)| (n as f64 * s).floor() as usize)
                .collect();
            Ok((scales, shape))
        }
        (None, Some(sizes)) if sizes.len() == x.len() && sizes.iter().all(|&s| s > 0) => {
            let shape: Vec<usize> = sizes.iter().map(|&s| s as usize).collect();
            let scales = x
                .iter()
                .zip(&shape)
                .map(|(&n, &m)| m as f64 / n as f64)
                .collect();
            Ok((scales, shape))
        }
        _ => Err(ctx.error(format!(
            "needs constant positive scales or sizes, one per axis of {x:?}"
        ))),
    }
}

fn reduce(ctx: &NodeContext, mean: bool) -> Result<Parsed, ModelError> {
    let x = ctx.input_shape(0)?.to_vec();
    // Axes: an attribute until ReduceSum-13 / ReduceMean-18, an input after.
    let axes_as_input = if mean {
        ctx.opset >= 18
    } else {
        ctx.opset >= 13
    };
    let (given, noop_with_empty_axes) = if axes_as_input {
        ctx.allow_attributes(&["keepdims", "noop_with_empty_axes"])?;
        (
            ctx.constant_ints(1, "the axes")?.filter(|a| !a.is_empty()),
            ctx.int("noop_with_empty_axes", 0)? == 1,
        )
    } else {
        ctx.allow_attributes(&["keepdims", "axes"])?;
        (ctx.ints("axes")?, false)
    };
    let keepdims = ctx.int("keepdims", 1)? == 1;
    let axes = match (given, noop_with_empty_axes) {
        (None, true) => Vec::new(),
        (given, _) => axes(ctx, given, x.len())?,
    };
    Ok(Parsed::leading(
        Op::Reduce(Reduce {
            axes,
            keepdims,
            mean,
        }),
        1,
    ))
}

pub fn reduce_mean(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    reduce(ctx, true)
}

pub fn reduce_sum(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    reduce(ctx, false)
}
