//! The data owner's check of an input against the model's, shared by every
//! backend.

use heman_compiler::graph::OutputTensor;
use heman_model::Tensor;
use tracing::warn;

use crate::error::{BackendError, Result};
use crate::interface::TensorInfo;

/// `tensor` in the model input's shape: same extents (extents of 1 aside)
/// and finite values, or refused naming `origin`. Values outside the
/// calibrated range are taken with a warning saying by how much.
pub fn fit_input(tensor: &Tensor, input: &TensorInfo, origin: &str) -> Result<Tensor> {
    if squeezed(tensor.shape()) != squeezed(&input.shape) {
        return Err(BackendError::Refused(format!(
            "{origin}: shape {:?}, the model's input '{}' is {:?}",
            tensor.shape(),
            input.name,
            input.shape
        )));
    }
    if let Some((i, v)) = tensor
        .data()
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return Err(BackendError::Refused(format!(
            "{origin}: element {i} is {v}"
        )));
    }
    warn_outside_calibration(tensor, input.calibrated_range, origin);
    Ok(tensor.clone().reshaped(input.shape.clone()))
}

/// A shape without its extents of 1.
fn squeezed(shape: &[usize]) -> Vec<usize> {
    shape.iter().copied().filter(|&d| d != 1).collect()
}

/// The inputs of `tensor`, a batch along its first axis (`[B, ...]`, the
/// model's input shape after it; one input alone may come without the
/// axis), each fitted to the model's input ([`fit_input`]); refused naming
/// `origin` when the shape is neither or `B` is outside `1..=max`.
pub fn split_batch(
    tensor: &Tensor,
    input: &TensorInfo,
    max: usize,
    origin: &str,
) -> Result<Vec<Tensor>> {
    let shape = tensor.shape();
    let (batch, item) = if squeezed(shape) == squeezed(&input.shape) {
        (1, shape)
    } else if !shape.is_empty() && squeezed(&shape[1..]) == squeezed(&input.shape) {
        (shape[0], &shape[1..])
    } else {
        return Err(BackendError::Refused(format!(
            "{origin}: shape {shape:?} is not a batch [B, ...] of the model's input '{}' {:?} (the batch axis first)",
            input.name, input.shape
        )));
    };
    if batch == 0 || batch > max {
        return Err(BackendError::Refused(format!(
            "{origin}: a batch of {batch} inputs; the model takes 1 to {max} per ciphertext"
        )));
    }
    let size = item.iter().product::<usize>().max(1);
    tensor
        .data()
        .chunks(size)
        .enumerate()
        .map(|(b, values)| {
            let item = Tensor::new(item.to_vec(), values.to_vec());
            fit_input(&item, input, &format!("{origin} (batch input {b})"))
        })
        .collect()
}

/// Per output, the batch's tensors (`items[b][k]`: input `b`'s output `k`)
/// stacked along a new first axis, which takes the place of an output's
/// leading extent of 1.
pub fn stack_batch(items: Vec<Vec<Tensor>>) -> Vec<Tensor> {
    let batch = items.len();
    let Some(first) = items.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|k| {
            let inner = first[k].shape();
            let inner = match inner.first() {
                Some(1) => &inner[1..],
                _ => inner,
            };
            let shape: Vec<usize> = std::iter::once(batch)
                .chain(inner.iter().copied())
                .collect();
            let data: Vec<f64> = items.iter().flat_map(|o| o[k].data().to_vec()).collect();
            Tensor::new(shape, data)
        })
        .collect()
}

/// Warns (and says by how much) when an input leaves the calibrated range.
fn warn_outside_calibration(tensor: &Tensor, calibrated: Option<(f64, f64)>, origin: &str) {
    let Some((lo, hi)) = calibrated else {
        return;
    };
    let (min, max) = tensor
        .data()
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let excess = (lo - min).max(max - hi);
    if excess > 0.0 {
        warn!(
            "{origin}: values in [{min}, {max}] exceed the calibrated input range [{lo}, {hi}] by {excess:.4} ({:.1}% of its width); encrypted results may lose accuracy",
            100.0 * excess / (hi - lo).max(f64::MIN_POSITIVE)
        );
    }
}

/// The model's outputs as the seam describes them: the joined output's
/// calibrated range goes to an only output (a part of several has none of
/// its own on record).
pub fn output_infos(outputs: &[OutputTensor], joined_range: Option<(f64, f64)>) -> Vec<TensorInfo> {
    outputs
        .iter()
        .map(|output| TensorInfo {
            name: output.name.clone(),
            shape: output.shape.clone(),
            calibrated_range: joined_range.filter(|_| outputs.len() == 1),
        })
        .collect()
}

/// One `inspect` line on the model's outputs: where each lies in the
/// decrypted output, and what the data owner applies after decryption.
pub fn outputs_line(outputs: &[OutputTensor]) -> String {
    let parts: Vec<String> = outputs
        .iter()
        .zip(heman_compiler::graph::output_spans(outputs))
        .map(|(o, span)| {
            let ops: Vec<String> = o.postprocess.iter().map(|op| op.name()).collect();
            let after = match ops.len() {
                0 => String::new(),
                _ => format!(", then {} after decryption", ops.join(", ")),
            };
            format!("'{}' {:?} (values {span:?}{after})", o.name, o.shape)
        })
        .collect();
    format!("  outputs ({}): {}", outputs.len(), parts.join("; "))
}

/// The digest a model owner answers once per key
/// ([`crate::ModelOwner::input_masks_digest`]): SHA-256 over the scheme's
/// name and the seeds (or other parts) in order, each with its length.
pub(crate) fn masks_digest<T: AsRef<[u8]>>(
    scheme: &[u8],
    parts: impl Iterator<Item = Result<T>>,
) -> Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"heman input masks\0");
    h.update(scheme);
    for part in parts {
        let part = part?;
        let part = part.as_ref();
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> TensorInfo {
        TensorInfo {
            name: "x".into(),
            shape: vec![1, 2, 2],
            calibrated_range: Some((0.0, 1.0)),
        }
    }

    #[test]
    fn batches_are_split_along_their_first_axis_or_refused() {
        let batch = Tensor::new(vec![3, 2, 2], (0..12).map(|v| v as f64 / 12.0).collect());
        let items = split_batch(&batch, &info(), 4, "b.npy").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2].shape(), &[1, 2, 2]);
        assert_eq!(items[1].data(), &batch.data()[4..8]);
        let one = Tensor::new(vec![2, 2], vec![0.0; 4]);
        assert_eq!(split_batch(&one, &info(), 4, "b.npy").unwrap().len(), 1);
        // The batch axis last is not a batch.
        let last = Tensor::new(vec![2, 2, 3], vec![0.0; 12]);
        let e = split_batch(&last, &info(), 4, "b.npy").unwrap_err();
        assert!(
            e.is_refusal() && e.to_string().contains("batch axis first"),
            "{e}"
        );
        let e = split_batch(&batch, &info(), 2, "b.npy").unwrap_err();
        assert!(e.to_string().contains("a batch of 3 inputs"), "{e}");
        let stacked = stack_batch(
            items
                .into_iter()
                .map(|x| vec![x.reshaped(vec![1, 4])])
                .collect(),
        );
        assert_eq!(stacked[0].shape(), &[3, 4]);
        assert_eq!(stacked[0].data(), batch.data());
    }

    #[test]
    fn inputs_are_reshaped_or_refused_by_name() {
        let t = Tensor::new(vec![2, 2], vec![0.0, 0.5, 1.0, 2.0]);
        assert_eq!(fit_input(&t, &info(), "a.npy").unwrap().shape(), &[1, 2, 2]);
        let wrong = Tensor::new(vec![3], vec![0.0; 3]);
        let e = fit_input(&wrong, &info(), "a.npy").unwrap_err();
        assert!(
            e.is_refusal() && e.to_string().contains("a.npy: shape [3]"),
            "{e}"
        );
        let nan = Tensor::new(vec![2, 2], vec![0.0, f64::NAN, 0.0, 0.0]);
        let e = fit_input(&nan, &info(), "b.npy").unwrap_err();
        assert!(e.to_string().contains("b.npy: element 1 is NaN"), "{e}");
    }
}
