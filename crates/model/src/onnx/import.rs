//! From ONNX bytes to a [`Graph`] with static shapes, constants folded as the
//! nodes are read.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;

use crate::error::{ModelError, Result, UnsupportedNode};
use crate::graph::{Graph, Node, ValueId};
use crate::onnx::context::NodeContext;
use crate::onnx::ops::{parser, Parsed};
use crate::onnx::proto::{data_type, GraphProto, ModelProto, NodeProto, ValueInfoProto};
use crate::onnx::tensor::tensor_from_proto;
use crate::ops::Op;
use crate::passes;
use crate::tensor::Shape;

/// Oldest default-domain operator set heman reads.
pub const MIN_OPSET: i64 = 9;
/// Newest default-domain operator set heman reads.
pub const MAX_OPSET: i64 = 21;

/// Reads an ONNX model and simplifies it ([`passes::simplify`]).
///
/// # Errors
/// As [`read_onnx`].
pub fn load_onnx(path: &Path) -> Result<Graph> {
    Ok(passes::simplify(read_onnx(path)?))
}

/// Imports ONNX bytes and simplifies them ([`passes::simplify`]); `origin`
/// names them in errors.
///
/// # Errors
/// As [`import_onnx`].
pub fn parse_onnx(bytes: &[u8], origin: &Path) -> Result<Graph> {
    Ok(passes::simplify(import_onnx(bytes, origin)?))
}

/// Reads an ONNX model as written (constants folded, nothing else rewritten).
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read; the errors of
/// [`import_onnx`] otherwise.
pub fn read_onnx(path: &Path) -> Result<Graph> {
    let bytes = std::fs::read(path).map_err(crate::error::io(path))?;
    import_onnx(&bytes, path)
}

/// Imports ONNX bytes; `origin` names the file in errors.
///
/// # Errors
/// [`ModelError::Decode`] for bytes that are not an ONNX model or an
/// operator set outside [`MIN_OPSET`]`..=`[`MAX_OPSET`];
/// [`ModelError::UnsupportedOperators`] listing every node heman cannot
/// import; [`ModelError::InvalidNode`] for a node with refused attributes or
/// inputs; [`ModelError::InvalidGraph`] for a malformed graph (no input or
/// output, a bad initialiser, a non-float or dynamically shaped input).
pub fn import_onnx(bytes: &[u8], origin: &Path) -> Result<Graph> {
    let decode_error = |message: String| ModelError::Decode {
        path: origin.to_path_buf(),
        message,
    };
    let model = ModelProto::decode(bytes).map_err(|e| decode_error(e.to_string()))?;
    let graph = model
        .graph
        .as_ref()
        .filter(|g| !g.node.is_empty() || !g.output.is_empty())
        .ok_or_else(|| decode_error("no graph (is this an ONNX file?)".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| decode_error("no default-domain opset_import".into()))?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(decode_error(format!(
            "opset {opset} is outside the supported range {MIN_OPSET}..={MAX_OPSET}"
        )));
    }
    check_supported(graph, opset)?;
    Importer::new(graph, opset)?.run(graph)
}

/// Refuses a graph with unsupported nodes, naming all of them at once.
fn check_supported(graph: &GraphProto, opset: i64) -> Result<()> {
    let unsupported: Vec<UnsupportedNode> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| !is_default_domain(&n.domain) || parser(&n.op_type).is_none())
        .map(|(i, n)| UnsupportedNode {
            name: node_name(n, i),
            op_type: n.op_type.clone(),
            domain: n.domain.clone(),
            opset,
        })
        .collect();
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(ModelError::UnsupportedOperators(unsupported))
    }
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

fn node_name(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("{}_{index}", node.op_type)
    } else {
        node.name.clone()
    }
}

struct Importer {
    graph: Graph,
    ids: HashMap<String, ValueId>,
    /// Names read by some node or listed as graph outputs.
    used: HashSet<String>,
}

impl Importer {
    fn new(proto: &GraphProto, opset: i64) -> Result<Self> {
        let mut importer = Importer {
            graph: Graph {
                name: proto.name.clone(),
                opset,
                values: Vec::new(),
                nodes: Vec::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
            },
            ids: HashMap::new(),
            used: proto
                .node
                .iter()
                .flat_map(|n| n.input.iter().cloned())
                .chain(proto.output.iter().map(|o| o.name.clone()))
                .collect(),
        };
        for init in &proto.initializer {
            let tensor = tensor_from_proto(init).map_err(|m| {
                ModelError::InvalidGraph(format!("initializer '{}': {m}", init.name))
            })?;
            importer.define(init.name.clone(), tensor.shape().to_vec(), Some(tensor));
        }
        for input in &proto.input {
            // Before IR version 4 initializers are also listed as inputs.
            if importer.ids.contains_key(&input.name) {
                continue;
            }
            let shape = static_input_shape(input)?;
            let id = importer.define(input.name.clone(), shape, None);
            importer.graph.inputs.push(id);
        }
        if importer.graph.inputs.is_empty() {
            return Err(ModelError::InvalidGraph("the model has no input".into()));
        }
        Ok(importer)
    }

    fn define(
        &mut self,
        name: String,
        shape: Vec<usize>,
        constant: Option<crate::tensor::Tensor>,
    ) -> ValueId {
        let id = self.graph.add_value(name.clone(), shape, constant);
        self.ids.insert(name, id);
        id
    }

    fn run(mut self, proto: &GraphProto) -> Result<Graph> {
        for (index, node) in proto.node.iter().enumerate() {
            self.import_node(node, index)?;
        }
        for output in &proto.output {
            let id = *self.ids.get(&output.name).ok_or_else(|| {
                ModelError::InvalidGraph(format!("output '{}' is produced by no node", output.name))
            })?;
            self.graph.outputs.push(id);
        }
        if self.graph.outputs.is_empty() {
            return Err(ModelError::InvalidGraph("the model has no output".into()));
        }
        Ok(self.graph)
    }

    fn import_node(&mut self, node: &NodeProto, index: usize) -> Result<()> {
        let name = node_name(node, index);
        let inputs = node
            .input
            .iter()
            .map(|input| {
                if input.is_empty() {
                    return Ok(None);
                }
                self.ids.get(input).map(|&id| Some(&self.graph.values[id])).ok_or_else(|| {
                    crate::error::invalid(
                        &name,
                        &node.op_type,
                        format!("input '{input}' is not defined before this node (graph not topologically sorted?)"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ctx = NodeContext {
            node,
            name: name.clone(),
            opset: self.graph.opset,
            inputs,
        };
        let output_name = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| ctx.error("has no output"))?
            .clone();
        let parse = parser(&node.op_type).expect("checked by check_supported");
        let outputs: Vec<(String, Op, Vec<usize>, String)> = match parse(&ctx)? {
            Parsed::Constant(tensor) => {
                self.define(output_name, tensor.shape().to_vec(), Some(tensor));
                return Ok(());
            }
            Parsed::Outputs(ops) => ops
                .into_iter()
                .zip(&node.output)
                .enumerate()
                .filter(|(_, (_, output))| !output.is_empty())
                .map(|(k, (op, output))| (format!("{name}:{k}"), op, vec![0], output.clone()))
                .collect(),
            Parsed::Op { op, inputs } => {
                if let Some(extra) = node
                    .output
                    .iter()
                    .skip(1)
                    .find(|o| !o.is_empty() && self.used.contains(*o))
                {
                    return Err(ctx.error(format!(
                        "output '{extra}' is used, but only the first output is supported"
                    )));
                }
                vec![(name, op, inputs, output_name)]
            }
        };
        // Inputs and shapes resolved while the node's context borrows the
        // graph, nodes added after.
        let resolved = outputs
            .into_iter()
            .map(|(name, op, positions, output)| {
                let args: Vec<ValueId> = positions
                    .iter()
                    .map(|&p| ctx.input(p).map(|v| self.ids[&v.name]))
                    .collect::<Result<_>>()?;
                let shapes: Vec<&[usize]> = args.iter().map(|&id| self.graph.shape(id)).collect();
                let shape = op.output_shape(&shapes).map_err(|m| ctx.error(m))?;
                Ok((name, op, args, shape, output))
            })
            .collect::<Result<Vec<_>>>()?;
        for (name, op, args, shape, output) in resolved {
            self.add_node(name, op, args, shape, output);
        }
        Ok(())
    }

    /// Adds the node computing `op` on `args` as `output_name` of `shape`,
    /// folded into a constant when every input is one.
    fn add_node(
        &mut self,
        name: String,
        op: Op,
        args: Vec<ValueId>,
        shape: Shape,
        output_name: String,
    ) {
        let constants: Option<Vec<&crate::tensor::Tensor>> =
            args.iter().map(|&id| self.graph.constant(id)).collect();
        match constants {
            Some(values) => {
                let folded = op.eval(&values);
                self.define(output_name, shape, Some(folded));
            }
            None => {
                let output = self.define(output_name, shape, None);
                self.graph.nodes.push(Node {
                    name,
                    op,
                    inputs: args,
                    output,
                });
            }
        }
    }
}

/// The static shape of a graph input. A symbolic first (batch) extent is taken
/// as 1; any other symbolic extent is refused.
fn static_input_shape(input: &ValueInfoProto) -> Result<Vec<usize>> {
    let fail = |m: String| ModelError::InvalidGraph(format!("input '{}': {m}", input.name));
    let tensor_type = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| fail("is not a tensor".into()))?;
    if !matches!(tensor_type.elem_type, data_type::FLOAT | data_type::DOUBLE) {
        return Err(fail(format!(
            "element type {} is not a float (heman encrypts real numbers)",
            tensor_type.elem_type
        )));
    }
    let dims = &tensor_type
        .shape
        .as_ref()
        .ok_or_else(|| fail("has no shape".into()))?
        .dim;
    dims.iter()
        .enumerate()
        .map(|(axis, d)| match (d.dim_value, &d.dim_param) {
            (Some(v), _) if v > 0 => Ok(v as usize),
            (_, _) if axis == 0 => Ok(1),
            (_, Some(p)) => Err(fail(format!(
                "dynamic extent '{p}' on axis {axis}; heman needs static shapes"
            ))),
            _ => Err(fail(format!(
                "unknown extent on axis {axis}; heman needs static shapes"
            ))),
        })
        .collect()
}
