//! `TensorProto` to [`Tensor`].

use crate::onnx::proto::{data_type, TensorProto};
use crate::tensor::{checked_volume, Tensor};

/// Decodes a tensor's data, or says why it can't be (external data, an element
/// type heman does not compute with, a length that disagrees with the dims).
pub fn tensor_from_proto(proto: &TensorProto) -> Result<Tensor, String> {
    if proto.data_location == 1 || !proto.external_data.is_empty() {
        return Err("data stored outside the model file (external data) is not supported".into());
    }
    let shape = proto
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    // Checked: dims come from the file (an overflow wrapped in release
    // builds; found by the `onnx` fuzz target).
    let count = checked_volume(&shape)
        .ok_or_else(|| format!("shape {shape:?} has more elements than memory"))?;
    let raw = &proto.raw_data;
    let data: Vec<f64> = if !raw.is_empty() {
        let size = match proto.data_type {
            data_type::FLOAT | data_type::INT32 | data_type::UINT32 => 4,
            data_type::DOUBLE | data_type::INT64 | data_type::UINT64 => 8,
            data_type::INT16 | data_type::UINT16 => 2,
            data_type::INT8 | data_type::UINT8 | data_type::BOOL => 1,
            other => return Err(format!("element type {other} is not supported")),
        };
        if count.checked_mul(size) != Some(raw.len()) {
            return Err(format!(
                "raw data of {} bytes for shape {shape:?} ({} bytes expected)",
                raw.len(),
                count * size
            ));
        }
        raw.chunks_exact(size)
            .map(|c| decode_raw(proto.data_type, c))
            .collect()
    } else {
        match proto.data_type {
            data_type::FLOAT => proto.float_data.iter().map(|&v| v as f64).collect(),
            data_type::DOUBLE => proto.double_data.clone(),
            data_type::INT64 => proto.int64_data.iter().map(|&v| v as f64).collect(),
            data_type::UINT64 | data_type::UINT32 => {
                proto.uint64_data.iter().map(|&v| v as f64).collect()
            }
            data_type::INT32
            | data_type::INT16
            | data_type::INT8
            | data_type::UINT16
            | data_type::UINT8
            | data_type::BOOL => proto.int32_data.iter().map(|&v| v as f64).collect(),
            other => return Err(format!("element type {other} is not supported")),
        }
    };
    if data.len() != count {
        return Err(format!(
            "{} values for shape {shape:?} ({count} expected)",
            data.len()
        ));
    }
    Ok(Tensor::new(shape, data))
}

fn decode_raw(data_type: i32, c: &[u8]) -> f64 {
    match data_type {
        data_type::FLOAT => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
        data_type::INT32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
        data_type::UINT32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
        data_type::DOUBLE => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        data_type::INT64 => {
            i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64
        }
        data_type::UINT64 => {
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64
        }
        data_type::INT16 => i16::from_le_bytes([c[0], c[1]]) as f64,
        data_type::UINT16 => u16::from_le_bytes([c[0], c[1]]) as f64,
        data_type::INT8 => c[0] as i8 as f64,
        _ => c[0] as f64,
    }
}
