//! The graph IR: named values with static shapes (constants carry their data)
//! and single-output nodes in topological order.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::ops::Op;
use crate::tensor::{volume, Shape, Tensor};

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;

/// A named tensor of the graph: a graph input, a weight, a folded constant
/// or a node's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// The ONNX name, unique within the graph; calibration ranges are keyed by it.
    pub name: String,
    /// The static shape, known at import for every value.
    pub shape: Shape,
    /// The data of a weight or folded constant; `None` for values computed at run time.
    pub constant: Option<Tensor>,
}

/// One operator application: reads some values and computes exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The ONNX node name (or `<op_type>_<index>`), for messages and listings.
    pub name: String,
    /// The operator, with its checked attributes.
    pub op: Op,
    /// The values the operator reads, in the operator's argument order.
    pub inputs: Vec<ValueId>,
    /// The value the node computes.
    pub output: ValueId,
}

/// A model as a data-flow graph with static shapes, ready to evaluate,
/// simplify or compile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The ONNX graph name (may be empty).
    pub name: String,
    /// Version of the default ONNX operator set the model was written for.
    pub opset: i64,
    /// Every value, indexed by [`ValueId`].
    pub values: Vec<Value>,
    /// The nodes, in topological order, so that one forward sweep evaluates
    /// the graph.
    pub nodes: Vec<Node>,
    /// The values fed by the caller, in the model's declared order.
    pub inputs: Vec<ValueId>,
    /// The values returned to the caller, in the model's declared order.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// The value with id `id`.
    ///
    /// # Panics
    /// When `id` is not a value of this graph.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id]
    }

    /// The static shape of value `id`.
    ///
    /// # Panics
    /// When `id` is not a value of this graph.
    pub fn shape(&self, id: ValueId) -> &[usize] {
        &self.values[id].shape
    }

    /// The data of value `id` if it is a constant, `None` if it is computed
    /// at run time.
    ///
    /// # Panics
    /// When `id` is not a value of this graph.
    pub fn constant(&self, id: ValueId) -> Option<&Tensor> {
        self.values[id].constant.as_ref()
    }

    /// Adds a value and returns its id.
    pub fn add_value(&mut self, name: String, shape: Shape, constant: Option<Tensor>) -> ValueId {
        self.values.push(Value {
            name,
            shape,
            constant,
        });
        self.values.len() - 1
    }

    /// Index of the node computing `id`, if any.
    pub fn producer(&self, id: ValueId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == id)
    }

    /// Indices of the nodes reading `id`.
    pub fn consumers(&self, id: ValueId) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].inputs.contains(&id))
            .collect()
    }

    /// Whether `id` is read by exactly one node and is not a graph output, so
    /// that the node producing it may be merged into its consumer.
    pub fn has_single_use(&self, id: ValueId) -> bool {
        self.consumers(id).len() == 1 && !self.outputs.contains(&id)
    }

    /// How many nodes of each operator the graph holds.
    pub fn op_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for node in &self.nodes {
            *counts.entry(node.op.name()).or_insert(0) += 1;
        }
        counts
    }

    /// Number of weight parameters (elements of constants read by nodes).
    pub fn parameter_count(&self) -> usize {
        let mut seen = vec![false; self.values.len()];
        let mut count = 0;
        for node in &self.nodes {
            for &id in &node.inputs {
                if let Some(c) = &self.values[id].constant {
                    if !std::mem::replace(&mut seen[id], true) {
                        count += c.len();
                    }
                }
            }
        }
        count
    }

    /// Checks one input tensor against graph input `index`: the shape must be
    /// the declared one, or equal to it once extents of 1 are dropped (a
    /// `28x28` image for a `1x1x28x28` input); the values must be finite.
    /// Returns the tensor in the declared shape.
    ///
    /// # Errors
    /// [`ModelError::InputShape`] for a shape that does not fit,
    /// [`ModelError::NonFinite`] for a NaN or infinite element.
    ///
    /// # Panics
    /// When `index` is not the index of a graph input.
    pub fn check_input(&self, index: usize, tensor: &Tensor) -> Result<Tensor> {
        let value = &self.values[self.inputs[index]];
        let squeezed = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        let fits = tensor.shape() == value.shape.as_slice()
            || (tensor.len() == volume(&value.shape)
                && squeezed(tensor.shape()) == squeezed(&value.shape));
        if !fits {
            return Err(ModelError::InputShape {
                name: value.name.clone(),
                expected: value.shape.clone(),
                found: tensor.shape().to_vec(),
            });
        }
        if let Some((index, &v)) = tensor
            .data()
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
        {
            return Err(ModelError::NonFinite {
                name: value.name.clone(),
                index,
                value: v,
            });
        }
        Ok(tensor.clone().reshaped(value.shape.clone()))
    }

    /// Runs the graph on `inputs` (one per graph input) and returns its outputs.
    ///
    /// # Errors
    /// As [`Graph::run_observed`].
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.run_observed(inputs, |_, _| {})
    }

    /// Runs the graph, showing every computed value (graph inputs included) to
    /// `observe` as soon as it exists, so that statistics can be gathered
    /// without keeping every intermediate tensor.
    ///
    /// # Errors
    /// [`ModelError::InvalidGraph`] when the number of inputs is wrong or the
    /// graph reads a value before computing it; the errors of
    /// [`Graph::check_input`] for an input that does not fit.
    pub fn run_observed(
        &self,
        inputs: &[Tensor],
        mut observe: impl FnMut(ValueId, &Tensor),
    ) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(ModelError::InvalidGraph(format!(
                "model takes {} input(s), {} given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        let mut slots: Vec<Option<Cow<'_, Tensor>>> = self
            .values
            .iter()
            .map(|v| v.constant.as_ref().map(Cow::Borrowed))
            .collect();
        for (index, tensor) in inputs.iter().enumerate() {
            let checked = self.check_input(index, tensor)?;
            let id = self.inputs[index];
            observe(id, &checked);
            slots[id] = Some(Cow::Owned(checked));
        }
        for node in &self.nodes {
            let args: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|&id| {
                    slots[id].as_deref().ok_or_else(|| {
                        ModelError::InvalidGraph(format!(
                            "node '{}' reads '{}' before it is computed",
                            node.name, self.values[id].name
                        ))
                    })
                })
                .collect::<Result<_>>()?;
            let result = node.op.eval(&args);
            observe(node.output, &result);
            slots[node.output] = Some(Cow::Owned(result));
        }
        self.outputs
            .iter()
            .map(|&id| {
                slots[id].as_deref().cloned().ok_or_else(|| {
                    ModelError::InvalidGraph(format!(
                        "output '{}' is never computed",
                        self.values[id].name
                    ))
                })
            })
            .collect()
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph '{}' (opset {})", self.name, self.opset)?;
        for &id in &self.inputs {
            writeln!(
                f,
                "  input  {} {:?}",
                self.values[id].name, self.values[id].shape
            )?;
        }
        for node in &self.nodes {
            let args: Vec<String> = node
                .inputs
                .iter()
                .map(|&id| {
                    let v = &self.values[id];
                    if v.constant.is_some() {
                        format!("const{:?}", v.shape)
                    } else {
                        v.name.clone()
                    }
                })
                .collect();
            writeln!(
                f,
                "  {:<18} {:<28} ({}) -> {} {:?}",
                node.op.name(),
                node.name,
                args.join(", "),
                self.values[node.output].name,
                self.values[node.output].shape
            )?;
        }
        for &id in &self.outputs {
            writeln!(
                f,
                "  output {} {:?}",
                self.values[id].name, self.values[id].shape
            )?;
        }
        Ok(())
    }
}
