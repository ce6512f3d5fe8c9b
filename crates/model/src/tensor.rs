//! Dense row-major tensors of `f64`, the plaintext evaluator's value type.

use serde::{Deserialize, Serialize};

/// A tensor shape: one extent per axis, row-major.
pub type Shape = Vec<usize>;

/// Number of elements of a shape (1 for a scalar).
pub fn volume(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// [`volume`] of a shape read from outside: `None` when the product, or
/// that of its nonzero dimensions (which its strides reach), overflows.
pub fn checked_volume(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))?;
    Some(volume(shape))
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    strides
}

/// The numpy/ONNX multidirectional broadcast of two shapes, or `None` when they
/// are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// A dense, row-major array of `f64` with a shape; every value the
/// plaintext evaluator handles (inputs, weights, activations) is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f64>,
}

impl Tensor {
    /// A tensor from a shape and row-major data.
    ///
    /// # Panics
    /// When the data length differs from the shape's volume: callers build
    /// both from the same source, so a mismatch is a bug, not bad input.
    pub fn new(shape: Shape, data: Vec<f64>) -> Self {
        assert_eq!(volume(&shape), data.len(), "tensor data/shape mismatch");
        Self { shape, data }
    }

    /// A tensor of the given shape filled with zeros.
    pub fn zeros(shape: Shape) -> Self {
        let n = volume(&shape);
        Self::new(shape, vec![0.0; n])
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(value: f64) -> Self {
        Self::new(vec![], vec![value])
    }

    /// The extent of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements (some extent is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The elements in row-major order, for in-place updates that keep the shape.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// The elements in row-major order, without copying, dropping the shape.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// The same data under another shape of equal volume.
    ///
    /// # Panics
    /// When the volumes differ.
    pub fn reshaped(mut self, shape: Shape) -> Self {
        assert_eq!(volume(&shape), self.data.len(), "reshape volume mismatch");
        self.shape = shape;
        self
    }

    /// A tensor of the same shape with `f` applied to every element.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        Self::new(
            self.shape.clone(),
            self.data.iter().map(|&x| f(x)).collect(),
        )
    }

    /// Element-wise binary operation with ONNX multidirectional broadcasting.
    /// Returns `None` when the shapes do not broadcast.
    pub fn zip_broadcast(&self, other: &Tensor, f: impl Fn(f64, f64) -> f64) -> Option<Tensor> {
        let shape = broadcast_shapes(&self.shape, &other.shape)?;
        if self.shape == other.shape {
            let data = self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect();
            return Some(Tensor::new(shape, data));
        }
        let a_index = BroadcastIndex::new(&self.shape, &shape);
        let b_index = BroadcastIndex::new(&other.shape, &shape);
        let data = (0..volume(&shape))
            .map(|i| f(self.data[a_index.source(i)], other.data[b_index.source(i)]))
            .collect();
        Some(Tensor::new(shape, data))
    }

    /// This tensor broadcast to `shape` (which must be a valid broadcast target).
    ///
    /// # Panics
    /// May panic when `shape` is not a broadcast target of the tensor's shape
    /// (shapes are checked at import, so this is a bug, not bad input).
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        let index = BroadcastIndex::new(&self.shape, shape);
        let data = (0..volume(shape))
            .map(|i| self.data[index.source(i)])
            .collect();
        Tensor::new(shape.to_vec(), data)
    }

    /// Largest absolute value (0 for an empty tensor).
    pub fn max_abs(&self) -> f64 {
        self.data.iter().fold(0.0, |m, &x| m.max(x.abs()))
    }

    /// Index of the largest element (first one on ties); `None` for an empty
    /// tensor.
    pub fn argmax(&self) -> Option<usize> {
        argmax(&self.data)
    }
}

/// Index of the largest of `values` (first one on ties); `None` when empty.
pub fn argmax(values: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &x) in values.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

/// Maps a flat index of a broadcast output back to the flat index of one operand.
struct BroadcastIndex {
    out_strides: Vec<usize>,
    src_strides: Vec<usize>,
}

impl BroadcastIndex {
    fn new(src: &[usize], out: &[usize]) -> Self {
        let offset = out.len() - src.len();
        let own = strides(src);
        let src_strides = (0..out.len())
            .map(|axis| {
                if axis < offset || src[axis - offset] == 1 {
                    0
                } else {
                    own[axis - offset]
                }
            })
            .collect();
        Self {
            out_strides: strides(out),
            src_strides,
        }
    }

    fn source(&self, mut flat: usize) -> usize {
        let mut src = 0;
        for (o, s) in self.out_strides.iter().zip(&self.src_strides) {
            src += (flat / o) * s;
            flat %= o;
        }
        src
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shapes(&[2, 3, 4], &[4]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shapes(&[2, 1, 4], &[3, 1]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast_shapes(&[2, 3], &[4]), None);
        assert_eq!(broadcast_shapes(&[], &[5]), Some(vec![5]));
    }

    #[test]
    fn zip_broadcast_per_channel() {
        let x = Tensor::new(vec![1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let c = Tensor::new(vec![2, 1], vec![10.0, 20.0]);
        let y = x.zip_broadcast(&c, |a, b| a + b).unwrap();
        assert_eq!(y.data(), &[11.0, 12.0, 23.0, 24.0]);
    }
}
