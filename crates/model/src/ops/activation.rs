//! Element-wise nonlinearities and softmax.

use serde::{Deserialize, Serialize};

use crate::ops::normalize_axis;
use crate::tensor::{Shape, Tensor};

/// An element-wise nonlinearity: the output has the input's shape and each
/// element depends on the matching input element only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x` where `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// The slope for negative inputs.
        alpha: f64,
    },
    /// The logistic function `1 / (1 + e^-x)`.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// `x` clamped to `[min, max]`.
    Clip {
        /// The lower bound (`-inf` when the model gives none).
        min: f64,
        /// The upper bound (`+inf` when the model gives none).
        max: f64,
    },
    /// -1, 0 or 1 (ONNX `Sign`; 0 at 0).
    Sign,
    /// `max(0, min(1, alpha * x + beta))` (MobileNetV3's gates).
    HardSigmoid {
        /// The slope.
        alpha: f64,
        /// The offset.
        beta: f64,
    },
    /// `x * HardSigmoid(x)` with `alpha = 1/6`, `beta = 1/2` (MobileNetV3).
    HardSwish,
    /// `ln(1 + e^x)`.
    Softplus,
    /// The error function.
    Erf,
    /// `x * Phi(x)`, `Phi` the standard normal distribution function, or
    /// its tanh approximation (ONNX `Gelu`, opset 20).
    Gelu {
        /// Whether the tanh approximation is asked for.
        tanh: bool,
    },
    /// `x` where `x > 0`, else `alpha * (e^x - 1)`.
    Elu {
        /// The scale of the negative part.
        alpha: f64,
    },
}

impl Activation {
    /// The ONNX operator name, for listings.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Clip { .. } => "Clip",
            Activation::Sign => "Sign",
            Activation::HardSigmoid { .. } => "HardSigmoid",
            Activation::HardSwish => "HardSwish",
            Activation::Softplus => "Softplus",
            Activation::Erf => "Erf",
            Activation::Gelu { .. } => "Gelu",
            Activation::Elu { .. } => "Elu",
        }
    }

    /// The function on one value.
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Clip { min, max } => x.max(min).min(max),
            Activation::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            // max(x, 0) + ln(1 + e^-|x|): no overflow for large |x|.
            Activation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Activation::Erf => libm::erf(x),
            Activation::Gelu { tanh: false } => 0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt())),
            Activation::Gelu { tanh: true } => {
                let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
                0.5 * x * (1.0 + inner.tanh())
            }
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
        }
    }

    /// The function on every element of a tensor.
    pub fn eval(&self, x: &Tensor) -> Tensor {
        x.map(|v| self.apply(v))
    }
}

/// `Softmax`. Before opset 13 the input is coerced to 2-D at `axis` and the
/// softmax runs over the whole trailing block; from 13 on it runs along `axis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Softmax {
    /// The axis as written in the model; negative values count from the end.
    pub axis: i64,
    /// Whether the pre-opset-13 semantics apply: softmax over all axes from
    /// `axis` on, rather than along `axis` alone.
    pub coerce_2d: bool,
}

impl Softmax {
    /// The output shape (the input's), or why `axis` does not fit the input's rank.
    pub fn output_shape(&self, x: &[usize]) -> Result<Shape, String> {
        normalize_axis(self.axis, x.len())?;
        Ok(x.to_vec())
    }

    /// The softmax of `x`, computed after subtracting the maximum so that
    /// large inputs do not overflow.
    ///
    /// # Panics
    /// When `axis` does not fit the input's rank (checked at import).
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let shape = x.shape();
        let axis = normalize_axis(self.axis, shape.len()).expect("axis checked at import");
        let outer: usize = shape[..axis].iter().product();
        let (extent, inner) = if self.coerce_2d {
            (shape[axis..].iter().product::<usize>(), 1)
        } else {
            (shape[axis], shape[axis + 1..].iter().product::<usize>())
        };
        let mut out = x.clone();
        let data = out.data_mut();
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| o * extent * inner + k * inner + i;
                let max = (0..extent)
                    .map(|k| data[at(k)])
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for k in 0..extent {
                    let e = (data[at(k)] - max).exp();
                    data[at(k)] = e;
                    sum += e;
                }
                for k in 0..extent {
                    data[at(k)] /= sum;
                }
            }
        }
        out
    }
}
