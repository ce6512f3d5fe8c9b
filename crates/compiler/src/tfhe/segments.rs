//! The TFHE view of a graph: a dataflow of linear segments (integer
//! weighted sums of ciphertexts, affine in one or more computed inputs),
//! lookup segments (one bootstrap per value) and max trees.
//!
//! An affine node reading values produced by linear segments that nothing
//! else reads is merged into them while the merged maps have no more
//! nonzero weights than the parts, or few in all ([`MERGED_WEIGHTS`]): data
//! movement (Reshape, Pad, Transpose), elementwise affine nodes, pools and
//! residual Add/Sub always merge, but a wide depthwise conv followed by a
//! 1x1 conv stays two cheap sums instead of one dense one. A residual `Add(conv(relu(x)), x)` is one linear segment
//! of two inputs; a Concat of branches one of as many inputs as branches.
//!
//! Everything elementwise that computes one value per element from a single
//! value `x` becomes one [`Expression`] and one bootstrap: a run of
//! activations, SiLU's `x * sigmoid(x)`, HardSwish's `x * clip(x + 3, 0, 6) /
//! 6`, or a branch that rejoins (`x*x + (x*x)*(x*x)`), while `x` itself may
//! stay live for other readers. A product of two values that are not
//! functions of one (a squeeze-and-excitation gate) is no lookup: the
//! compiler rewrites it first ([`expand_products`]).

use std::collections::HashMap;

use heman_model::ops::elementwise::{Binary, BinaryKind};
use heman_model::ops::{Op, PoolKind};
use heman_model::{Graph, Node, Tensor, ValueId};

use crate::error::{CompileError, Result};
use crate::graph::linear_map::AffineMap;
use crate::graph::stages::{affine_inputs, computed_inputs};
use crate::tfhe::function::{Expression, Function, Term};

/// Nonzero weights up to which affine steps merge even where the merged
/// map is denser than its parts: a sum read by another sum is quantised
/// twice, the second time over the first's wide integer range, which costs
/// far more precision than these multiply-adds cost time (a million of them
/// take about as long as twenty bootstraps on two cores).
const MERGED_WEIGHTS: usize = 1 << 20;

/// What one segment computes.
#[derive(Debug, Clone)]
pub enum SegmentKind {
    /// `y = sum_k M_k x_k + b`: one map per input, the bias carried by the
    /// first.
    Linear(Vec<AffineMap>),
    /// Elementwise `y = f(x)`.
    Lookup(Expression),
    /// MaxPool: output `i` is the largest input of `windows[i]`.
    Max(Vec<Vec<u32>>),
}

/// One node of the TFHE dataflow: what it computes, what it reads and the
/// graph value it writes.
#[derive(Debug, Clone)]
pub struct Segment {
    /// What the segment computes.
    pub kind: SegmentKind,
    /// The graph values read (one per map of a linear segment, one for the
    /// others), whose calibrated ranges describe them.
    pub inputs: Vec<ValueId>,
    /// Where each input comes from: 0 the graph input, `k + 1` the output
    /// of segment `k`.
    pub sources: Vec<usize>,
    /// The graph value the segment writes (an inserted requantisation
    /// writes the value it reads again).
    pub output: ValueId,
    /// The last node's name, for messages and reports.
    pub name: String,
}

impl Segment {
    /// Whether the segment is a linear one.
    pub fn is_linear(&self) -> bool {
        matches!(self.kind, SegmentKind::Linear(_))
    }
}

fn function_of(op: &Op) -> Option<Function> {
    match op {
        Op::Square => Some(Function::Square),
        Op::Pow { exponent } => Some(Function::Pow(*exponent)),
        Op::Activation(a) => Some(Function::Activation(*a)),
        _ => None,
    }
}

/// The longest run of elementwise nodes from `start` on that computes a
/// single value from `x` alone, every intermediate value read inside the
/// run only (`x` may have readers elsewhere): (its expression, last node
/// index, output).
fn elementwise_region(
    graph: &Graph,
    start: usize,
    x: ValueId,
) -> Option<(Expression, usize, ValueId)> {
    let shape = graph.shape(x);
    let readers = |id: ValueId| graph.consumers(id).len() + graph.outputs.contains(&id) as usize;
    let mut expression = Expression::input();
    let mut term_of: HashMap<ValueId, usize> = HashMap::from([(x, 0)]);
    let mut pending: HashMap<ValueId, usize> = HashMap::new();
    let mut best = None;
    for index in start..graph.nodes.len() {
        let node = &graph.nodes[index];
        if graph.shape(node.output) != shape {
            break;
        }
        let operand = |id: ValueId, expression: &mut Expression| -> Option<usize> {
            match (term_of.get(&id), graph.constant(id)) {
                (Some(&t), _) => Some(t),
                (None, Some(c)) if c.len() == 1 => {
                    Some(expression.push(Term::Constant(c.data()[0])))
                }
                _ => None,
            }
        };
        let term = match (&node.op, &node.inputs[..]) {
            (Op::Binary(b), &[a, c]) => {
                let (Some(a), Some(c)) = (operand(a, &mut expression), operand(c, &mut expression))
                else {
                    break;
                };
                expression.push(Term::Binary(b.kind, a, c))
            }
            (Op::Identity, &[a]) => match term_of.get(&a) {
                Some(&t) => t,
                None => break,
            },
            (op, &[a]) => match (function_of(op), term_of.get(&a)) {
                (Some(f), Some(&t)) => expression.push(Term::Unary(f, t)),
                _ => break,
            },
            _ => break,
        };
        for id in computed_inputs(graph, index) {
            if let Some(p) = pending.get_mut(&id) {
                *p = p.saturating_sub(1);
            }
        }
        term_of.insert(node.output, term);
        pending.insert(node.output, readers(node.output));
        let closed = pending.iter().all(|(&id, &p)| p == 0 || id == node.output);
        if closed {
            let mut result = expression.clone();
            // The result must be the last term.
            if result.terms.len() - 1 != term {
                result.push(Term::Unary(Function::Pow(1), term));
            }
            best = Some((result, index, node.output));
        }
    }
    best
}

/// Whether `e` is affine in its input (a lookup of it would waste a
/// bootstrap on what a linear segment computes exactly).
fn is_affine(e: &Expression) -> bool {
    // Terms that depend on the input.
    let mut varying = vec![false; e.terms.len()];
    for (i, term) in e.terms.iter().enumerate() {
        let (v, nonlinear) = match *term {
            Term::Input => (true, false),
            Term::Constant(_) => (false, false),
            Term::Unary(Function::Pow(1), a) => (varying[a], false),
            Term::Unary(_, a) => (varying[a], varying[a]),
            Term::Binary(kind, a, b) => {
                let both = varying[a] && varying[b];
                let nonlinear = match kind {
                    BinaryKind::Add | BinaryKind::Sub => false,
                    BinaryKind::Mul => both,
                    BinaryKind::Div | BinaryKind::PRelu => varying[b],
                };
                (varying[a] || varying[b], nonlinear)
            }
        };
        if nonlinear {
            return false;
        }
        varying[i] = v;
    }
    true
}

/// Segments as they grow: a linear segment merged into a later one leaves
/// `None`; sources are `k + 1` for raw segment `k` until [`Walk::wire`].
struct Walk<'g> {
    graph: &'g Graph,
    segments: Vec<Option<Segment>>,
    /// The raw segment that computes each graph value read so far.
    producer: HashMap<ValueId, usize>,
    problems: Vec<String>,
    /// Products of two computed values no lookup absorbs (graph indices).
    products: Vec<usize>,
}

impl<'g> Walk<'g> {
    fn new(graph: &'g Graph) -> Self {
        Self {
            graph,
            segments: Vec::new(),
            producer: HashMap::new(),
            problems: Vec::new(),
            products: Vec::new(),
        }
    }

    /// The source of graph value `id`: 0 for the graph input.
    fn source(&self, id: ValueId) -> usize {
        self.producer.get(&id).map_or(0, |&k| k + 1)
    }

    fn push(&mut self, kind: SegmentKind, inputs: Vec<ValueId>, output: ValueId, name: &str) {
        let sources = inputs.iter().map(|&id| self.source(id)).collect();
        self.producer.insert(output, self.segments.len());
        self.segments.push(Some(Segment {
            kind,
            inputs,
            sources,
            output,
            name: name.to_string(),
        }));
    }

    /// The raw index of the linear segment producing `id`, if nothing but
    /// the node `reader` reads it (so that it may merge into its reader).
    fn mergeable(&self, id: ValueId) -> Option<usize> {
        let &k = self.producer.get(&id)?;
        let linear = self.segments[k].as_ref().is_some_and(Segment::is_linear);
        (linear && self.graph.has_single_use(id)).then_some(k)
    }

    /// Node `index`, affine in `inputs`: probed, merged with the linear
    /// segments that produce its inputs where that keeps the maps sparse.
    fn linear(&mut self, index: usize, inputs: Vec<ValueId>) {
        let node = &self.graph.nodes[index];
        let maps = AffineMap::probe_region(self.graph, &[index], &inputs);
        let mut parts: Vec<(ValueId, AffineMap)> = Vec::new();
        let mut bias = vec![0.0; maps[0].rows];
        for (x, map) in inputs.into_iter().zip(maps) {
            add_to(&mut bias, &map.bias);
            let map = map.without_bias();
            let merged = self.mergeable(x).and_then(|k| {
                let Some(SegmentKind::Linear(inner)) = self.segments[k].as_ref().map(|s| &s.kind)
                else {
                    return None;
                };
                let composed: Vec<AffineMap> = inner.iter().map(|m| m.then(&map)).collect();
                let before: usize =
                    inner.iter().map(AffineMap::nonzeros).sum::<usize>() + map.nonzeros();
                let after: usize = composed.iter().map(AffineMap::nonzeros).sum();
                (after <= before.max(MERGED_WEIGHTS)).then_some((k, composed))
            });
            match merged {
                Some((k, composed)) => {
                    let producer = self.segments[k].take().expect("a live segment");
                    for (y, part) in producer.inputs.into_iter().zip(composed) {
                        add_to(&mut bias, &part.bias);
                        add_part(&mut parts, y, part.without_bias());
                    }
                }
                None => add_part(&mut parts, x, map),
            }
        }
        parts[0].1.bias = bias;
        let (inputs, maps): (Vec<ValueId>, Vec<AffineMap>) = parts.into_iter().unzip();
        self.push(SegmentKind::Linear(maps), inputs, node.output, &node.name);
    }

    /// A requantisation (the identity lookup) of `id`, which then reads as
    /// its output.
    fn requantise(&mut self, id: ValueId, name: &str) {
        let name = format!("{name} (requantise)");
        self.push(
            SegmentKind::Lookup(Expression::input()),
            vec![id],
            id,
            &name,
        );
    }

    /// A max tree compares integers of one uniform quantisation in a window
    /// it reads exactly: it reads a lookup's output (or the graph input)
    /// that nothing else reads, and a requantisation is put before it
    /// otherwise, and after it when a linear segment reads it (to move its
    /// values to that segment's encoding).
    fn max(&mut self, index: usize, input: ValueId, windows: Vec<Vec<u32>>) {
        let (graph, node) = (self.graph, &self.graph.nodes[index]);
        let private_lookup = self.producer.get(&input).is_none_or(|&k| {
            matches!(
                self.segments[k].as_ref().map(|s| &s.kind),
                Some(SegmentKind::Lookup(_))
            )
        }) && graph.has_single_use(input);
        if !private_lookup {
            self.requantise(input, &node.name);
        }
        self.push(
            SegmentKind::Max(windows),
            vec![input],
            node.output,
            &node.name,
        );
        let linear_reader = graph
            .consumers(node.output)
            .into_iter()
            .any(|c| affine_inputs(graph, c).is_some());
        if linear_reader {
            self.requantise(node.output, &node.name);
        }
    }

    /// A lookup of `expression` of `x` (nodes `start..=last`) writing
    /// `output`: composed with the lookup that produces `x` when nothing
    /// outside the region reads `x`.
    fn lookup(&mut self, expression: Expression, x: ValueId, start: usize, last: usize) {
        let graph = self.graph;
        let node = &graph.nodes[last];
        let private = !graph.outputs.contains(&x)
            && graph
                .consumers(x)
                .iter()
                .all(|c| (start..=last).contains(c));
        let previous = self.producer.get(&x).copied().filter(|&k| {
            private
                && matches!(
                    self.segments[k].as_ref().map(|s| &s.kind),
                    Some(SegmentKind::Lookup(_))
                )
        });
        match previous.and_then(|k| self.segments[k].take()) {
            Some(Segment {
                kind: SegmentKind::Lookup(first),
                inputs,
                ..
            }) => self.push(
                SegmentKind::Lookup(first.then(&expression)),
                inputs,
                node.output,
                &node.name,
            ),
            _ => self.push(
                SegmentKind::Lookup(expression),
                vec![x],
                node.output,
                &node.name,
            ),
        }
    }

    fn node(&mut self, index: usize) -> usize {
        let graph = self.graph;
        let node = &graph.nodes[index];
        let computed = computed_inputs(graph, index);
        if computed.is_empty() {
            return index + 1;
        }
        let affine = affine_inputs(graph, index);
        let chain_step = matches!(&affine, Some(i) if i.len() == 1 && graph.has_single_use(i[0]));
        if !chain_step && computed.len() == 1 {
            if let Some((expression, last, _)) = elementwise_region(graph, index, computed[0]) {
                if !is_affine(&expression) {
                    self.lookup(expression, computed[0], index, last);
                    return last + 1;
                }
            }
        }
        match (&node.op, affine) {
            (_, Some(inputs)) => self.linear(index, inputs),
            (Op::Pool(pool), None) if pool.kind == PoolKind::Max && computed.len() == 1 => {
                let windows = pool
                    .windows(graph.shape(computed[0]))
                    .into_iter()
                    .map(|w| w.into_iter().map(|i| i as u32).collect())
                    .collect();
                self.max(index, computed[0], windows);
            }
            (Op::Binary(b), None) if b.kind == BinaryKind::Mul && computed.len() == 2 => {
                self.products.push(index);
            }
            _ => self
                .problems
                .push(format!("'{}' ({})", node.name, node.op.name())),
        }
        index + 1
    }

    /// Keeps the segments the output depends on, in order, with their
    /// sources renumbered.
    fn wire(self) -> Result<Vec<Segment>> {
        let graph = self.graph;
        if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
            return Err(CompileError::Graph(
                "only single-input, single-output models are supported".into(),
            ));
        }
        let output = graph.outputs[0];
        let Some(&last) = self.producer.get(&output) else {
            return Err(CompileError::Graph(format!(
                "output '{}' is not computed from the input",
                graph.value(output).name
            )));
        };
        let mut live = vec![false; self.segments.len()];
        live[last] = true;
        for k in (0..=last).rev() {
            if let (true, Some(segment)) = (live[k], &self.segments[k]) {
                for &s in &segment.sources {
                    if s > 0 {
                        live[s - 1] = true;
                    }
                }
            }
        }
        let mut renumbered = vec![0; self.segments.len() + 1];
        let mut out = Vec::new();
        for (k, segment) in self.segments.into_iter().enumerate() {
            let Some(mut segment) = segment.filter(|_| live[k]) else {
                continue;
            };
            segment.sources = segment.sources.iter().map(|&s| renumbered[s]).collect();
            out.push(segment);
            renumbered[k + 1] = out.len();
        }
        Ok(out)
    }
}

/// `bias += part`.
fn add_to(bias: &mut [f64], part: &[f64]) {
    for (b, p) in bias.iter_mut().zip(part) {
        *b += p;
    }
}

/// Adds `map` of input `x` to the parts, summed with a part of the same input.
fn add_part(parts: &mut Vec<(ValueId, AffineMap)>, x: ValueId, map: AffineMap) {
    match parts.iter_mut().find(|(y, _)| *y == x) {
        Some((_, existing)) => *existing = existing.plus(&map),
        None => parts.push((x, map)),
    }
}

/// Splits a single-input, single-output graph into a dataflow of segments;
/// every offending node is reported at once.
pub fn segments(graph: &Graph) -> Result<Vec<Segment>> {
    let mut walk = Walk::new(graph);
    let mut index = 0;
    while index < graph.nodes.len() {
        index = walk.node(index);
    }
    for &p in &walk.products {
        let node = &graph.nodes[p];
        walk.problems.push(format!(
            "'{}' ({}: a product of two computed values, to be expanded first)",
            node.name,
            node.op.name()
        ));
    }
    if !walk.problems.is_empty() {
        return Err(CompileError::UnsupportedForTfhe(walk.problems));
    }
    walk.wire()
}

/// The products of two computed values in `graph` that no lookup absorbs
/// (graph node indices): what [`expand_products`] rewrites.
pub fn unfused_products(graph: &Graph) -> Vec<usize> {
    let mut walk = Walk::new(graph);
    let mut index = 0;
    while index < graph.nodes.len() {
        index = walk.node(index);
    }
    walk.products
}

/// `graph` with each product `a * b` of `products` (graph node indices)
/// rewritten as `((a + b)^2 - (a - b)^2) / 4`: two squares, which TFHE
/// evaluates as lookups, and affine steps that join the linear segments
/// around them (the quarter-squares multiplication used for products of two
/// ciphertexts with univariate programmable bootstrapping, e.g. Chillotti,
/// Joye, Paillier, CSCML 2021, section 4).
pub fn expand_products(graph: &Graph, products: &[usize]) -> Graph {
    let mut out = graph.clone();
    out.nodes.clear();
    let binary = |kind| Op::Binary(Binary { kind });
    for (index, node) in graph.nodes.iter().enumerate() {
        if !products.contains(&index) {
            out.nodes.push(node.clone());
            continue;
        }
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let shape = graph.shape(node.output).to_vec();
        let quarter = out.add_value(
            format!("{}/quarter", node.name),
            Vec::new(),
            Some(Tensor::new(vec![1], vec![0.25])),
        );
        let mut push = |what: &str, op: Op, inputs: Vec<ValueId>, output: Option<ValueId>| {
            let name = format!("{}/{what}", node.name);
            let output = output.unwrap_or_else(|| out.add_value(name.clone(), shape.clone(), None));
            out.nodes.push(Node {
                name,
                op,
                inputs,
                output,
            });
            output
        };
        let sum = push("a+b", binary(BinaryKind::Add), vec![a, b], None);
        let difference = push("a-b", binary(BinaryKind::Sub), vec![a, b], None);
        let sum_squared = push("(a+b)^2", Op::Square, vec![sum], None);
        let difference_squared = push("(a-b)^2", Op::Square, vec![difference], None);
        let four_products = push(
            "4ab",
            binary(BinaryKind::Sub),
            vec![sum_squared, difference_squared],
            None,
        );
        push(
            "ab",
            binary(BinaryKind::Mul),
            vec![four_products, quarter],
            Some(node.output),
        );
    }
    out
}
