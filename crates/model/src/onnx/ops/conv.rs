//! `Conv` and the pools: their shared window attributes.

use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{AutoPad, Conv, Op, Pool, PoolKind, Window};

/// Reads `auto_pad`, `pads`, `strides`, `dilations` (and `ceil_mode` when
/// `pooling`) for a window of `kernel` over spatial input extents `spatial`.
fn window(
    ctx: &NodeContext,
    kernel: Vec<usize>,
    spatial: &[usize],
    pooling: bool,
) -> Result<Window, ModelError> {
    let rank = kernel.len();
    if rank == 0 || spatial.len() != rank {
        return Err(ctx.error(format!(
            "kernel_shape {kernel:?} does not match the input's {} spatial axes",
            spatial.len()
        )));
    }
    let per_axis = |name: &str| -> Result<Vec<usize>, ModelError> {
        match ctx.ints(name)? {
            None => Ok(vec![1; rank]),
            Some(v) if v.len() == rank && v.iter().all(|&s| s >= 1) => {
                Ok(v.iter().map(|&s| s as usize).collect())
            }
            Some(v) => Err(ctx.error(format!("{name} {v:?}: expected {rank} values >= 1"))),
        }
    };
    let strides = per_axis("strides")?;
    let dilations = per_axis("dilations")?;
    let auto_pad_text = ctx.string("auto_pad", "NOTSET")?;
    let auto_pad = AutoPad::parse(&auto_pad_text)
        .ok_or_else(|| ctx.error(format!("unknown auto_pad '{auto_pad_text}'")))?;
    let (pads_begin, pads_end) = match auto_pad.resolve(spatial, &kernel, &strides, &dilations) {
        Some(pads) => {
            if ctx.has("pads") {
                return Err(ctx.error("pads and auto_pad are both set"));
            }
            pads
        }
        None => match ctx.ints("pads")? {
            None => (vec![0; rank], vec![0; rank]),
            Some(p) if p.len() == 2 * rank && p.iter().all(|&v| v >= 0) => (
                p[..rank].iter().map(|&v| v as usize).collect(),
                p[rank..].iter().map(|&v| v as usize).collect(),
            ),
            Some(p) => {
                return Err(ctx.error(format!(
                    "pads {p:?}: expected {} non-negative values",
                    2 * rank
                )))
            }
        },
    };
    let ceil_mode = if pooling {
        match ctx.int("ceil_mode", 0)? {
            0 => false,
            1 => true,
            v => return Err(ctx.error(format!("ceil_mode must be 0 or 1, got {v}"))),
        }
    } else {
        false
    };
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads_begin,
        pads_end,
        ceil_mode,
    })
}

fn kernel_shape(ctx: &NodeContext) -> Result<Option<Vec<usize>>, ModelError> {
    ctx.ints("kernel_shape")?
        .map(|k| {
            k.iter()
                .map(|&v| usize::try_from(v).ok().filter(|&v| v > 0))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ctx.error(format!("kernel_shape {k:?} must be positive")))
        })
        .transpose()
}

fn spatial<'a>(ctx: &NodeContext<'a>) -> Result<&'a [usize], ModelError> {
    let x = ctx.input_shape(0)?;
    if x.len() < 3 {
        return Err(ctx.error(format!("input must be [N, C, spatial..], got {x:?}")));
    }
    Ok(&x[2..])
}

pub fn conv(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    let w = ctx.input_shape(1)?;
    let kernel = match kernel_shape(ctx)? {
        Some(k) => k,
        None => w.get(2..).map(<[usize]>::to_vec).unwrap_or_default(),
    };
    let group = ctx.int("group", 1)?;
    if group < 1 {
        return Err(ctx.error(format!("group must be >= 1, got {group}")));
    }
    let op = Op::Conv(Conv {
        window: window(ctx, kernel, spatial(ctx)?, false)?,
        group: group as usize,
    });
    let has_bias = ctx.inputs.get(2).copied().flatten().is_some();
    Ok(Parsed::leading(op, if has_bias { 3 } else { 2 }))
}

fn pool(ctx: &NodeContext, kind: PoolKind, known: &[&str]) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(known)?;
    let kernel = kernel_shape(ctx)?.ok_or_else(|| ctx.error("kernel_shape is required"))?;
    let op = Op::Pool(Pool {
        kind,
        window: window(ctx, kernel, spatial(ctx)?, true)?,
    });
    Ok(Parsed::leading(op, 1))
}

pub fn average_pool(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let count_include_pad = match ctx.int("count_include_pad", 0)? {
        0 => false,
        1 => true,
        v => return Err(ctx.error(format!("count_include_pad must be 0 or 1, got {v}"))),
    };
    let known = [
        "auto_pad",
        "ceil_mode",
        "count_include_pad",
        "dilations",
        "kernel_shape",
        "pads",
        "strides",
    ];
    pool(ctx, PoolKind::Average { count_include_pad }, &known)
}

pub fn max_pool(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let known = [
        "auto_pad",
        "ceil_mode",
        "dilations",
        "kernel_shape",
        "pads",
        "storage_order",
        "strides",
    ];
    pool(ctx, PoolKind::Max, &known)
}

/// `GlobalAveragePool` / `GlobalMaxPool`: a pool whose window is the whole input.
fn global_pool(ctx: &NodeContext, kind: PoolKind) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&[])?;
    let spatial = spatial(ctx)?;
    let rank = spatial.len();
    let op = Op::Pool(Pool {
        kind,
        window: Window {
            kernel: spatial.to_vec(),
            strides: vec![1; rank],
            dilations: vec![1; rank],
            pads_begin: vec![0; rank],
            pads_end: vec![0; rank],
            ceil_mode: false,
        },
    });
    Ok(Parsed::leading(op, 1))
}

pub fn global_average_pool(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    let kind = PoolKind::Average {
        count_include_pad: false,
    };
    global_pool(ctx, kind)
}

pub fn global_max_pool(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    global_pool(ctx, PoolKind::Max)
}
