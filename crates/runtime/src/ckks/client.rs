//! The data owner's side: tensors to ciphertexts in the plan's input layout
//! and back from its output layout.

use heman_ckks::{Ciphertext, CkksParameters, Decryptor, Encoder, Encryptor};
use heman_compiler::ckks::SlotLayout;
use heman_model::Tensor;
use rayon::prelude::*;

use crate::error::{Result, RuntimeError};

/// The key a data owner encrypts with.
pub enum InputKey<'a> {
    /// Secret-key encryption: noise of a fresh sample (sigma) instead of
    /// public-key encryption's ~N sigma, and a seeded ciphertext half the
    /// size. The data owner holds the secret key in heman's workflow.
    Secret(&'a Decryptor),
    /// Public-key encryption (what the dry runs that measure the output
    /// noise use: the noisier of the two).
    Public(&'a Encryptor),
}

/// Encrypts `tensor` laid out as `layout`, one ciphertext per layout
/// ciphertext, at the top level and the parameters' scale.
pub fn encrypt_tensor(
    params: &CkksParameters,
    key: InputKey<'_>,
    layout: &SlotLayout,
    tensor: &Tensor,
) -> Result<Vec<Ciphertext>> {
    encrypt_tensor_at(params, key, layout, tensor, params.max_level())
}

/// As [`encrypt_tensor`] at `level` (a plan that bootstraps takes its
/// inputs at the top of the compute levels). A layout of fewer slots than
/// the parameters' (a power of two dividing them) is replicated over all.
pub fn encrypt_tensor_at(
    params: &CkksParameters,
    key: InputKey<'_>,
    layout: &SlotLayout,
    tensor: &Tensor,
    level: usize,
) -> Result<Vec<Ciphertext>> {
    if tensor.len() != layout.len() {
        return Err(RuntimeError::Input(format!(
            "{} values for a layout of {}",
            tensor.len(),
            layout.len()
        )));
    }
    if !layout.slots.is_power_of_two() || layout.slots > params.slots() {
        return Err(RuntimeError::Input(format!(
            "layout of {} slots for parameters with {}",
            layout.slots,
            params.slots()
        )));
    }
    encrypt_slots(params, key, &layout.pack(tensor.data()), level)
}

/// Encrypts slot vectors as packed (a layout of fewer slots than the
/// parameters' replicated over all), one ciphertext each, at `level` and
/// the parameters' scale.
pub fn encrypt_slots(
    params: &CkksParameters,
    key: InputKey<'_>,
    packed: &[Vec<f64>],
    level: usize,
) -> Result<Vec<Ciphertext>> {
    let encoder = Encoder::new(params);
    packed
        .par_iter()
        .map(|slots| {
            let slots = super::executor::replicated(slots, params.slots());
            let pt = encoder.encode(&slots, level, params.default_scale())?;
            Ok(match key {
                InputKey::Secret(k) => k.encrypt_symmetric(&pt)?,
                InputKey::Public(k) => k.encrypt(&pt)?,
            })
        })
        .collect()
}

/// Refuses a batch a throughput layout cannot take: none, more inputs than
/// slots, an input of another length than the layout's.
fn check_batch(layout: &SlotLayout, batch: &[Tensor]) -> Result<()> {
    if batch.is_empty() || batch.len() > layout.slots {
        return Err(RuntimeError::Input(format!(
            "a batch of {} inputs: from 1 to {} (the slots of a ciphertext)",
            batch.len(),
            layout.slots
        )));
    }
    if let Some((b, x)) = batch
        .iter()
        .enumerate()
        .find(|(_, x)| x.len() != layout.len())
    {
        return Err(RuntimeError::Input(format!(
            "batch input {b} has {} values for a layout of {}",
            x.len(),
            layout.len()
        )));
    }
    Ok(())
}

/// Encrypts a batch of tensors in a throughput plan's layout
/// ([`SlotLayout::batched`]): input `b` in slot `b` of every ciphertext, one
/// ciphertext per element.
pub fn encrypt_batch(
    params: &CkksParameters,
    key: InputKey<'_>,
    layout: &SlotLayout,
    batch: &[Tensor],
    level: usize,
) -> Result<Vec<Ciphertext>> {
    check_batch(layout, batch)?;
    if !layout.is_batched(params.slots()) {
        return Err(RuntimeError::Input(
            "a batch for a layout that is not throughput packing's".into(),
        ));
    }
    let values: Vec<&[f64]> = batch.iter().map(|x| x.data()).collect();
    encrypt_slots(params, key, &layout.pack_batch(&values), level)
}

/// Decrypts a throughput plan's output ciphertexts into the batch's first
/// `batch` tensors of `shape`.
pub fn decrypt_batch(
    params: &CkksParameters,
    decryptor: &Decryptor,
    layout: &SlotLayout,
    shape: &[usize],
    cts: &[Ciphertext],
    batch: usize,
) -> Result<Vec<Tensor>> {
    check_count(layout, cts)?;
    if batch == 0 || batch > layout.slots || !layout.is_batched(params.slots()) {
        return Err(RuntimeError::Input(format!(
            "a batch of {batch} from a layout of {} slots that is not throughput packing's",
            layout.slots
        )));
    }
    let slots = decoded(params, decryptor, cts)?;
    Ok(layout
        .unpack_batch(&slots, batch)
        .into_iter()
        .map(|values| Tensor::new(shape.to_vec(), values))
        .collect())
}

/// Refuses a number of ciphertexts other than `layout`'s.
pub(crate) fn check_count(layout: &SlotLayout, cts: &[Ciphertext]) -> Result<()> {
    if cts.len() != layout.ciphertexts {
        return Err(RuntimeError::Input(format!(
            "{} ciphertexts for a layout of {}",
            cts.len(),
            layout.ciphertexts
        )));
    }
    Ok(())
}

/// Decrypts ciphertexts laid out as `layout` into a tensor of `shape`.
pub fn decrypt_tensor(
    params: &CkksParameters,
    decryptor: &Decryptor,
    layout: &SlotLayout,
    shape: &[usize],
    cts: &[Ciphertext],
) -> Result<Tensor> {
    check_count(layout, cts)?;
    let slots = decoded(params, decryptor, cts)?;
    Ok(Tensor::new(shape.to_vec(), layout.unpack(&slots)))
}

/// Every ciphertext decrypted and decoded to its slots (in parallel: a
/// throughput batch's output is one ciphertext per element).
fn decoded(
    params: &CkksParameters,
    decryptor: &Decryptor,
    cts: &[Ciphertext],
) -> Result<Vec<Vec<f64>>> {
    let encoder = Encoder::new(params);
    cts.par_iter()
        .map(|ct| Ok(encoder.decode(&decryptor.decrypt(ct)?)))
        .collect()
}
