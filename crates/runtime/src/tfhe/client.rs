//! The data owner's side: a tensor quantised and encrypted as the plan's
//! input expects, and output ciphertexts decrypted and dequantised.

use heman_compiler::tfhe::{PlanInput, PlanOutput};
use heman_model::Tensor;
use heman_tfhe::{ClientKey, LweVector, SeededLweVector};

use crate::error::{Result, RuntimeError};

/// The data owner: quantises `x` as the model's input expects and encrypts
/// it (seeded form).
pub fn encrypt_input(input: &PlanInput, key: &ClientKey, x: &Tensor) -> Result<SeededLweVector> {
    let volume: usize = input.shape.iter().product();
    if x.len() != volume {
        return Err(RuntimeError::Input(format!(
            "{} values for an input of {volume}",
            x.len()
        )));
    }
    let plaintexts: Vec<u64> = x
        .data()
        .iter()
        .map(|&v| input.encoding.encode(input.quantise(v) as i64))
        .collect();
    Ok(key.encrypt(&plaintexts, input.key))
}

/// The data owner: the output window integers of decrypted ciphertexts.
pub fn decrypt_integers(output: &PlanOutput, key: &ClientKey, cts: &LweVector) -> Result<Vec<u64>> {
    if cts.len() != output.values.len() {
        return Err(RuntimeError::Input(format!(
            "{} ciphertexts for an output of {} values",
            cts.len(),
            output.values.len()
        )));
    }
    let phases = key
        .decrypt(cts)
        .map_err(|e| RuntimeError::Input(e.to_string()))?;
    Ok(phases
        .iter()
        .enumerate()
        .map(|(i, &p)| output.decode(i, p))
        .collect())
}

/// The data owner: the real output tensor (before post-processing).
pub fn decrypt_output(output: &PlanOutput, key: &ClientKey, cts: &LweVector) -> Result<Tensor> {
    let u = decrypt_integers(output, key, cts)?;
    Ok(Tensor::new(
        output.shape.clone(),
        u.iter()
            .enumerate()
            .map(|(i, &u)| output.values.real(i, u as f64))
            .collect(),
    ))
}
