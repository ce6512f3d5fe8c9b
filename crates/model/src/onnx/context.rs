//! What an operator parser sees of one node: its attributes (checked against
//! the names the operator knows), its inputs' shapes and constant data.

use crate::error::{invalid, ModelError};
use crate::graph::Value;
use crate::onnx::proto::{attribute_type, AttributeProto, NodeProto};
use crate::onnx::tensor::tensor_from_proto;
use crate::tensor::Tensor;

pub struct NodeContext<'a> {
    pub node: &'a NodeProto,
    pub name: String,
    pub opset: i64,
    /// One entry per declared input; `None` for an omitted optional input ("").
    pub inputs: Vec<Option<&'a Value>>,
}

impl<'a> NodeContext<'a> {
    pub fn error(&self, message: impl Into<String>) -> ModelError {
        invalid(&self.name, &self.node.op_type, message)
    }

    /// Refuses attributes this operator does not define.
    pub fn allow_attributes(&self, known: &[&str]) -> Result<(), ModelError> {
        let unknown: Vec<&str> = self
            .node
            .attribute
            .iter()
            .map(|a| a.name.as_str())
            .filter(|n| !known.contains(n))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("unsupported attribute(s): {}", unknown.join(", "))))
        }
    }

    fn attribute(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn typed(
        &self,
        name: &str,
        ty: i32,
        what: &str,
    ) -> Result<Option<&'a AttributeProto>, ModelError> {
        match self.attribute(name) {
            None => Ok(None),
            Some(a) if !a.ref_attr_name.is_empty() => {
                Err(self.error(format!("attribute '{name}' refers to a function attribute")))
            }
            // Type 0 (undefined) is accepted from old exporters that omit it.
            Some(a) if a.r#type == ty || a.r#type == 0 => Ok(Some(a)),
            Some(_) => Err(self.error(format!("attribute '{name}' must be {what}"))),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, ModelError> {
        Ok(self
            .typed(name, attribute_type::INT, "an integer")?
            .map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f64) -> Result<f64, ModelError> {
        Ok(self
            .typed(name, attribute_type::FLOAT, "a float")?
            .map_or(default, |a| a.f as f64))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ModelError> {
        Ok(self
            .typed(name, attribute_type::INTS, "a list of integers")?
            .map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, ModelError> {
        Ok(self
            .typed(name, attribute_type::FLOATS, "a list of floats")?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String, ModelError> {
        Ok(self
            .typed(name, attribute_type::STRING, "a string")?
            .map_or(default.to_string(), |a| {
                String::from_utf8_lossy(&a.s).into_owned()
            }))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>, ModelError> {
        self.typed(name, attribute_type::TENSOR, "a tensor")?
            .map(|a| {
                let proto =
                    a.t.as_ref()
                        .ok_or_else(|| self.error(format!("attribute '{name}' has no tensor")))?;
                tensor_from_proto(proto).map_err(|m| self.error(format!("attribute '{name}': {m}")))
            })
            .transpose()
    }

    /// Whether the attribute is present at all.
    pub fn has(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// Input `index`, which must be present.
    pub fn input(&self, index: usize) -> Result<&'a Value, ModelError> {
        self.inputs
            .get(index)
            .copied()
            .flatten()
            .ok_or_else(|| self.error(format!("input {index} is required")))
    }

    pub fn input_shape(&self, index: usize) -> Result<&'a [usize], ModelError> {
        Ok(&self.input(index)?.shape)
    }

    /// The data of optional input `index`, which must be a constant when present.
    pub fn optional_constant(
        &self,
        index: usize,
        what: &str,
    ) -> Result<Option<&'a Tensor>, ModelError> {
        match self.inputs.get(index).copied().flatten() {
            None => Ok(None),
            Some(v) => v.constant.as_ref().map(Some).ok_or_else(|| {
                self.error(format!(
                    "{what} (input '{}') must be a constant known when the model is loaded",
                    v.name
                ))
            }),
        }
    }

    pub fn constant_ints(&self, index: usize, what: &str) -> Result<Option<Vec<i64>>, ModelError> {
        Ok(self
            .optional_constant(index, what)?
            .map(|t| t.data().iter().map(|&v| v as i64).collect()))
    }

    pub fn constant_scalar(&self, index: usize, what: &str) -> Result<Option<f64>, ModelError> {
        match self.optional_constant(index, what)? {
            None => Ok(None),
            Some(t) if t.len() == 1 => Ok(Some(t.data()[0])),
            Some(t) => Err(self.error(format!(
                "{what} must be a scalar, has shape {:?}",
                t.shape()
            ))),
        }
    }
}
