//! The subset of the ONNX protobuf schema (`onnx/onnx.proto`, IR version 3 to 10)
//! that heman reads, declared with `prost` derives. Field numbers follow the
//! published schema; fields not declared here (sub-graphs, sparse tensors,
//! training info, functions) are skipped by the decoder as unknown fields.

/// `ModelProto`: the top-level container of an `.onnx` file, a graph with
/// the metadata and operator sets it was written against.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The version of the ONNX IR (file format) the model targets.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The name of the framework or tool that generated the model.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// The version of the framework or tool that generated the model.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// The model's domain, a reverse domain name such as `com.example`.
    #[prost(string, tag = "4")]
    pub domain: String,
    /// The version of the model itself, chosen by its author.
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    /// Human-readable documentation of the model (Markdown allowed).
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The graph evaluated to execute the model.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// The operator sets the model relies on; at least one entry must name
    /// the version of the default ONNX operator set.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

/// `OperatorSetIdProto`: names one operator set and version a model imports.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// The operator set's domain; empty (or `ai.onnx`) for the operator set
    /// defined by the ONNX specification.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The version of the operator set.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto`: a computation graph, its nodes, constant initialisers and
/// typed inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes of the graph, sorted topologically.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The name of the graph.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Named constant tensors (weights); a name may also appear among the
    /// inputs, where the initialiser is then the input's default value.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Human-readable documentation of the graph (Markdown allowed).
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// The inputs of the graph, with their types.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The outputs of the graph, with their types.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Optional type information for intermediate values of the graph.
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// `NodeProto`: one call of an operator on named values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// The names of the values the node reads; an empty name marks an
    /// omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// The names of the values the node produces; an empty name marks an
    /// omitted optional output.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// An optional identifier of the node within the graph.
    #[prost(string, tag = "3")]
    pub name: String,
    /// The symbolic identifier of the operator to execute, e.g. `Conv`.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// The operator's named attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Human-readable documentation of the node (Markdown allowed).
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The domain of the operator set defining `op_type`; empty for the
    /// default ONNX domain.
    #[prost(string, tag = "7")]
    pub domain: String,
}

/// `AttributeProto.AttributeType` values.
pub mod attribute_type {
    /// A single 32-bit float, in [`AttributeProto::f`](super::AttributeProto::f).
    pub const FLOAT: i32 = 1;
    /// A single 64-bit integer, in [`AttributeProto::i`](super::AttributeProto::i).
    pub const INT: i32 = 2;
    /// A single byte string, in [`AttributeProto::s`](super::AttributeProto::s).
    pub const STRING: i32 = 3;
    /// A tensor, in [`AttributeProto::t`](super::AttributeProto::t).
    pub const TENSOR: i32 = 4;
    /// A sub-graph (not decoded by heman).
    pub const GRAPH: i32 = 5;
    /// A list of 32-bit floats, in [`AttributeProto::floats`](super::AttributeProto::floats).
    pub const FLOATS: i32 = 6;
    /// A list of 64-bit integers, in [`AttributeProto::ints`](super::AttributeProto::ints).
    pub const INTS: i32 = 7;
    /// A list of byte strings, in [`AttributeProto::strings`](super::AttributeProto::strings).
    pub const STRINGS: i32 = 8;
}

/// `AttributeProto`: a named attribute of a node, holding exactly one value
/// of the kind its `type` names.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name, unique among the node's attributes.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value of a `FLOAT` attribute.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// The value of an `INT` attribute.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// The value of a `STRING` attribute (UTF-8 bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// The value of a `TENSOR` attribute.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// The value of a `FLOATS` attribute.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// The value of an `INTS` attribute.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// The value of a `STRINGS` attribute.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    /// Which of the value fields is in use, one of the [`attribute_type`]
    /// constants; required since IR version 0.0.2.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// When not empty, the attribute holds no value but refers to the
    /// attribute of this name of the enclosing function; valid only inside
    /// functions.
    #[prost(string, tag = "21")]
    pub ref_attr_name: String,
}

/// `ValueInfoProto`: the name and type of a value, as declared for graph
/// inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value's type; required for the inputs and outputs of the
    /// top-level graph.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto`: only the `tensor_type` member of its `value` oneof is read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// The type of a tensor value.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`: the element type and (possibly partial) shape of a
/// tensor value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// The element type, a [`data_type`] value; never `UNDEFINED` (0).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// The shape; absent when even the rank is unknown.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`: a tensor shape whose extents may be fixed, symbolic
/// or unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// One entry per axis, outermost first.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: `dim_value` and `dim_param` form a oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A fixed extent.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A symbolic extent, such as `batch`; equal names denote equal extents.
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// `TensorProto.DataType` values heman reads.
pub mod data_type {
    /// 32-bit IEEE 754 float.
    pub const FLOAT: i32 = 1;
    /// Unsigned 8-bit integer.
    pub const UINT8: i32 = 2;
    /// Signed 8-bit integer.
    pub const INT8: i32 = 3;
    /// Unsigned 16-bit integer.
    pub const UINT16: i32 = 4;
    /// Signed 16-bit integer.
    pub const INT16: i32 = 5;
    /// Signed 32-bit integer.
    pub const INT32: i32 = 6;
    /// Signed 64-bit integer.
    pub const INT64: i32 = 7;
    /// Boolean, one byte per element in `raw_data`.
    pub const BOOL: i32 = 9;
    /// 64-bit IEEE 754 float.
    pub const DOUBLE: i32 = 11;
    /// Unsigned 32-bit integer.
    pub const UINT32: i32 = 12;
    /// Unsigned 64-bit integer.
    pub const UINT64: i32 = 13;
}

/// `TensorProto`: a serialised tensor value (an initialiser, a `Constant`
/// node's value or a tensor attribute). Its elements live in exactly one of
/// the typed fields, `raw_data`, or an external file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The shape, outermost axis first; empty for a scalar.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// The element type, a [`data_type`] value.
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Elements of a `FLOAT` (or complex64) tensor.
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// Elements of an `INT32`, `INT16`, `INT8`, `UINT16`, `UINT8` or `BOOL`
    /// tensor (and bit patterns of 16- and 8-bit floats), widened to 32 bits.
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// Elements of an `INT64` tensor.
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// An optional name; required for initialisers, which are referred to by it.
    #[prost(string, tag = "8")]
    pub name: String,
    /// The elements as fixed-width little-endian bytes (IEEE 754 for floats,
    /// one byte per boolean), an alternative to the typed fields.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// Elements of a `DOUBLE` (or complex128) tensor.
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// Elements of a `UINT32` or `UINT64` tensor.
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
    /// Where externally stored data lies: `location` (a path relative to the
    /// model file), and optionally `offset`, `length` and `checksum`.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// Where the elements are stored: 0 (`DEFAULT`) in this message,
    /// 1 (`EXTERNAL`) in the file that `external_data` names.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `StringStringEntryProto`: one key-value pair of a string map, the form
/// ONNX uses for maps across protobuf versions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The entry's key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The entry's value.
    #[prost(string, tag = "2")]
    pub value: String,
}
