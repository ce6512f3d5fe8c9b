//! Arrays across the boundary: little-endian `f64` bytes in C order and a
//! shape, both checked before anything is allocated from them.

use heman_model::Tensor;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::RefusedError;

/// An array's bytes and shape, as the Python layer passes them.
pub type Raw<'py> = (Bound<'py, PyBytes>, Vec<usize>);

/// The tensor of `data` (`f64`, little-endian) shaped `shape`; `what` names
/// it in errors.
pub fn tensor(data: &[u8], shape: Vec<usize>, what: &str) -> PyResult<Tensor> {
    let count = heman_model::tensor::checked_volume(&shape)
        .ok_or_else(|| RefusedError::new_err(format!("{what}: shape {shape:?} overflows")))?;
    if count.checked_mul(8) != Some(data.len()) {
        return Err(RefusedError::new_err(format!(
            "{what}: {} bytes do not hold {count} float64 values (shape {shape:?})",
            data.len()
        )));
    }
    let values = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(<[u8; 8]>::try_from(c).expect("chunks of 8 bytes")))
        .collect();
    Ok(Tensor::new(shape, values))
}

/// [`tensor`] of what the Python layer passed.
pub fn from_raw(raw: &Raw<'_>, what: &str) -> PyResult<Tensor> {
    tensor(raw.0.as_bytes(), raw.1.clone(), what)
}

/// A tensor's bytes and shape for the Python layer.
pub fn to_raw<'py>(py: Python<'py>, tensor: &Tensor) -> Raw<'py> {
    let bytes: Vec<u8> = tensor.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    (PyBytes::new(py, &bytes), tensor.shape().to_vec())
}

/// A tensor's name, bytes and shape (one of a model's outputs).
pub type NamedRaw<'py> = (String, Bound<'py, PyBytes>, Vec<usize>);

/// Named tensors for the Python layer.
pub fn named_to_raw<'py>(
    py: Python<'py>,
    names: impl Iterator<Item = String>,
    tensors: &[Tensor],
) -> Vec<NamedRaw<'py>> {
    names
        .zip(tensors)
        .map(|(name, t)| {
            let (bytes, shape) = to_raw(py, t);
            (name, bytes, shape)
        })
        .collect()
}
