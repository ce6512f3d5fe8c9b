use crate::error::ModelError;
use crate::onnx::context::NodeContext;
use crate::onnx::ops::Parsed;
use crate::ops::{BatchNormalization, Op};

pub fn batch_normalization(ctx: &NodeContext) -> Result<Parsed, ModelError> {
    ctx.allow_attributes(&["epsilon", "momentum", "spatial", "training_mode"])?;
    if ctx.int("training_mode", 0)? != 0 {
        return Err(ctx.error("training_mode=1 is not supported (inference only)"));
    }
    if ctx.int("spatial", 1)? != 1 {
        return Err(ctx.error("spatial=0 is not supported"));
    }
    let op = Op::BatchNormalization(BatchNormalization {
        epsilon: ctx.float("epsilon", 1e-5)?,
    });
    Ok(Parsed::leading(op, 5))
}
