//! Element-wise binary operators with multidirectional broadcasting.

use serde::{Deserialize, Serialize};

use crate::tensor::{broadcast_shapes, Shape, Tensor};

/// Which element-wise binary operator a [`Binary`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryKind {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `x` where `x >= 0`, else `slope * x` (slope broadcast to `x`).
    PRelu,
}

impl BinaryKind {
    /// The ONNX operator name, for listings.
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "Add",
            BinaryKind::Sub => "Sub",
            BinaryKind::Mul => "Mul",
            BinaryKind::Div => "Div",
            BinaryKind::PRelu => "PRelu",
        }
    }

    /// The operator on one pair of elements.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::PRelu => {
                if a >= 0.0 {
                    a
                } else {
                    a * b
                }
            }
        }
    }
}

/// An element-wise binary operator with ONNX broadcasting
/// (unidirectional for `PRelu`, multidirectional otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    /// Which operator it is.
    pub kind: BinaryKind,
}

impl Binary {
    /// The broadcast output shape of the two inputs, or why they do not
    /// broadcast.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Shape, String> {
        let [a, b] = inputs else {
            return Err(format!(
                "{} takes 2 inputs, got {}",
                self.kind.name(),
                inputs.len()
            ));
        };
        let out = broadcast_shapes(a, b)
            .ok_or_else(|| format!("shapes {a:?} and {b:?} do not broadcast"))?;
        // PRelu broadcasts the slope to the input only (unidirectional).
        if self.kind == BinaryKind::PRelu && out != *a {
            return Err(format!(
                "slope of shape {b:?} does not broadcast to input {a:?}"
            ));
        }
        Ok(out)
    }

    /// The operator on two tensors, broadcast against each other.
    ///
    /// # Panics
    /// When the shapes do not broadcast (checked at import).
    pub fn eval(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let kind = self.kind;
        a.zip_broadcast(b, |x, y| kind.apply(x, y))
            .expect("shapes checked at import")
    }
}
