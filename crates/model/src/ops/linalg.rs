//! `MatMul` (numpy semantics) and `Gemm`.

use serde::{Deserialize, Serialize};

use crate::tensor::{broadcast_shapes, volume, Shape, Tensor};

/// Output shape of numpy-style `matmul`: 1-D operands are promoted and the
/// promoted axis removed again; leading (batch) axes broadcast.
pub fn matmul_shape(inputs: &[&[usize]]) -> Result<Shape, String> {
    let [a, b] = inputs else {
        return Err(format!("MatMul takes 2 inputs, got {}", inputs.len()));
    };
    if a.is_empty() || b.is_empty() {
        return Err("MatMul operands must have rank >= 1".into());
    }
    let (a2, b2) = (promote_lhs(a), promote_rhs(b));
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(format!("inner dimensions differ: {a:?} x {b:?}"));
    }
    let batch = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])
        .ok_or_else(|| format!("batch dimensions of {a:?} and {b:?} do not broadcast"))?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

fn promote_lhs(a: &[usize]) -> Vec<usize> {
    if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    }
}

fn promote_rhs(b: &[usize]) -> Vec<usize> {
    if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    }
}

/// The numpy-style matrix product of two tensors.
///
/// # Panics
/// On shapes that [`matmul_shape`] refuses (checked at import).
pub fn matmul(a: &Tensor, b: &Tensor) -> Tensor {
    let out_shape = matmul_shape(&[a.shape(), b.shape()]).expect("shapes checked at import");
    let (a2, b2) = (promote_lhs(a.shape()), promote_rhs(b.shape()));
    let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
    let batch = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2]).expect("checked");
    let batches = volume(&batch);
    // Broadcast both operands to full batch extents, then multiply block by block.
    let a_full = a
        .clone()
        .reshaped(a2.clone())
        .broadcast_to(&[batch.clone(), vec![m, k]].concat());
    let b_full = b
        .clone()
        .reshaped(b2.clone())
        .broadcast_to(&[batch, vec![k, n]].concat());
    let mut out = vec![0.0; batches * m * n];
    for t in 0..batches {
        let ab = &a_full.data()[t * m * k..(t + 1) * m * k];
        let bb = &b_full.data()[t * k * n..(t + 1) * k * n];
        let ob = &mut out[t * m * n..(t + 1) * m * n];
        matmul_block(ab, bb, ob, m, k, n);
    }
    Tensor::new(out_shape, out)
}

/// `out[m x n] += a[m x k] * b[k x n]`, row-major.
fn matmul_block(a: &[f64], b: &[f64], out: &mut [f64], m: usize, k: usize, n: usize) {
    for i in 0..m {
        for p in 0..k {
            let aip = a[i * k + p];
            if aip == 0.0 {
                continue;
            }
            let row = &b[p * n..(p + 1) * n];
            for (o, &bv) in out[i * n..(i + 1) * n].iter_mut().zip(row) {
                *o += aip * bv;
            }
        }
    }
}

/// `Gemm`: `alpha * op(A) * op(B) + beta * C`, `op` an optional transpose,
/// `C` optional and broadcast to the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gemm {
    /// The factor applied to the product `op(A) * op(B)`.
    pub alpha: f64,
    /// The factor applied to `C`.
    pub beta: f64,
    /// Whether `A` is transposed before the product.
    pub trans_a: bool,
    /// Whether `B` is transposed before the product.
    pub trans_b: bool,
}

impl Gemm {
    fn dims(&self, a: &[usize], b: &[usize]) -> Result<(usize, usize, usize), String> {
        if a.len() != 2 || b.len() != 2 {
            return Err(format!("Gemm operands must be 2-D, got {a:?} and {b:?}"));
        }
        let (m, k) = if self.trans_a {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        let (k2, n) = if self.trans_b {
            (b[1], b[0])
        } else {
            (b[0], b[1])
        };
        if k != k2 {
            return Err(format!(
                "inner dimensions differ: A {a:?} (transA={}) x B {b:?} (transB={})",
                self.trans_a as u8, self.trans_b as u8
            ));
        }
        Ok((m, k, n))
    }

    /// The output shape `[M, N]`, or why the inputs do not fit.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        if !(2..=3).contains(&inputs.len()) {
            return Err(format!("Gemm takes 2 or 3 inputs, got {}", inputs.len()));
        }
        let (m, _, n) = self.dims(inputs[0], inputs[1])?;
        if let Some(c) = inputs.get(2) {
            if broadcast_shapes(c, &[m, n]).as_deref() != Some(&[m, n][..]) {
                return Err(format!("C of shape {c:?} does not broadcast to [{m}, {n}]"));
            }
        }
        Ok(vec![m, n])
    }

    /// `alpha * op(A) * op(B) + beta * C` for inputs `A`, `B` and optional `C`.
    ///
    /// # Panics
    /// On inputs that [`Gemm::output_shape`] refuses (checked at import).
    pub fn eval(&self, inputs: &[&Tensor]) -> Tensor {
        let (a, b) = (inputs[0], inputs[1]);
        let (m, k, n) = self.dims(a.shape(), b.shape()).expect("checked at import");
        let a = if self.trans_a {
            transpose_2d(a)
        } else {
            a.clone()
        };
        let b = if self.trans_b {
            transpose_2d(b)
        } else {
            b.clone()
        };
        let mut out = vec![0.0; m * n];
        matmul_block(a.data(), b.data(), &mut out, m, k, n);
        let mut y = Tensor::new(vec![m, n], out).map(|v| self.alpha * v);
        if let Some(c) = inputs.get(2) {
            let beta = self.beta;
            y = y
                .zip_broadcast(c, |v, cv| v + beta * cv)
                .expect("checked at import");
        }
        y
    }
}

/// The transpose of a matrix.
///
/// # Panics
/// When `t` has fewer than two axes.
pub fn transpose_2d(t: &Tensor) -> Tensor {
    let (r, c) = (t.shape()[0], t.shape()[1]);
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = t.data()[i * c + j];
        }
    }
    Tensor::new(vec![c, r], out)
}
