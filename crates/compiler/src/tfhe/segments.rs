//! The TFHE view of a graph: a chain of linear segments (integer weighted
//! sums on ciphertexts) and lookup segments (one bootstrap per value).
//!
//! Each affine node is probed on its own and merged into the preceding
//! linear segment while the merged map has no more nonzero weights than the
//! two parts: data movement (Reshape, Pad, Transpose) and elementwise affine
//! nodes always merge, but a depthwise conv followed by a 1x1 conv stays two
//! cheap sums instead of one dense one.
//!
//! Everything elementwise between two linear segments becomes one
//! [`Expression`] of a single input: a run of activations, and also a branch
//! that rejoins (`x*x + (x*x)*(x*x)`), since its result is still a function
//! of one value per element.

use std::collections::HashMap;

use heman_model::ops::{Op, PoolKind};
use heman_model::{Graph, ValueId};

use crate::error::{CompileError, Result};
use crate::graph::linear_map::AffineMap;
use crate::graph::stages::{affine_input, computed_inputs};
use crate::tfhe::function::{Expression, Function, Term};

/// What one segment computes.
#[derive(Debug, Clone)]
pub enum SegmentKind {
    /// `y = M x + b`.
    Linear(AffineMap),
    /// Elementwise `y = f(x)`.
    Lookup(Expression),
    /// MaxPool: output `i` is the largest input of `windows[i]`.
    Max(Vec<Vec<u32>>),
}

/// One link of the TFHE chain: what it computes and the graph values it
/// reads and writes.
#[derive(Debug, Clone)]
pub struct Segment {
    /// What the segment computes.
    pub kind: SegmentKind,
    /// The graph value the segment reads.
    pub input: ValueId,
    /// The graph value the segment writes.
    pub output: ValueId,
    /// The last node's name, for messages and reports.
    pub name: String,
}

fn function_of(op: &Op) -> Option<Function> {
    match op {
        Op::Square => Some(Function::Square),
        Op::Pow { exponent } => Some(Function::Pow(*exponent)),
        Op::Activation(a) => Some(Function::Activation(*a)),
        _ => None,
    }
}

/// Readers of `id` still to come: consuming nodes, plus one if it is a
/// graph output.
fn readers(graph: &Graph, id: ValueId) -> usize {
    graph.consumers(id).len() + graph.outputs.contains(&id) as usize
}

/// The longest run of elementwise nodes from `start` on that computes a
/// single value from `x` alone: (its expression, last node index, output).
fn elementwise_region(
    graph: &Graph,
    start: usize,
    x: ValueId,
) -> Option<(Expression, usize, ValueId)> {
    let shape = graph.shape(x);
    let mut expression = Expression::input();
    let mut term_of: HashMap<ValueId, usize> = HashMap::from([(x, 0)]);
    let mut pending: HashMap<ValueId, usize> = HashMap::from([(x, readers(graph, x))]);
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
        pending.insert(node.output, readers(graph, node.output));
        let open: Vec<ValueId> = pending
            .iter()
            .filter(|(_, &p)| p > 0)
            .map(|(&id, _)| id)
            .collect();
        if open == [node.output] {
            let mut closed = expression.clone();
            // The result must be the last term.
            if closed.terms.len() - 1 != term {
                closed.push(Term::Unary(Function::Pow(1), term));
            }
            best = Some((closed, index, node.output));
        }
    }
    best
}

/// Splits a single-input, single-output graph into segments; every
/// offending node is reported at once.
pub fn segments(graph: &Graph) -> Result<Vec<Segment>> {
    let mut out: Vec<Segment> = Vec::new();
    let mut problems = Vec::new();
    let mut expected = graph.inputs[0];
    let mut index = 0;
    while index < graph.nodes.len() {
        let node = &graph.nodes[index];
        let Some(&input) = computed_inputs(graph, index).first() else {
            index += 1;
            continue;
        };
        if input != expected {
            if problems.is_empty() {
                return Err(CompileError::Graph(format!(
                    "node '{}': branching graphs are not supported by the TFHE backend yet (only branches of elementwise nodes that rejoin)",
                    node.name
                )));
            }
            break;
        }
        let affine =
            affine_input(graph, index).is_some() || matches!(node.op, Op::Pow { exponent: 1 });
        if affine && graph.has_single_use(expected) {
            let map = AffineMap::probe(graph, &[index], input);
            push_linear(&mut out, map, input, node.output, &node.name);
            expected = node.output;
            index += 1;
        } else if let (Op::Pool(pool), true) = (&node.op, graph.has_single_use(expected)) {
            if pool.kind != PoolKind::Max {
                problems.push(format!("'{}' ({})", node.name, node.op.name()));
            } else {
                let windows = pool
                    .windows(graph.shape(input))
                    .into_iter()
                    .map(|w| w.into_iter().map(|i| i as u32).collect())
                    .collect();
                out.push(Segment {
                    kind: SegmentKind::Max(windows),
                    input,
                    output: node.output,
                    name: node.name.clone(),
                });
            }
            expected = node.output;
            index += 1;
        } else if let Some((expression, last, output)) = elementwise_region(graph, index, input) {
            let name = graph.nodes[last].name.clone();
            push_lookup(&mut out, expression, input, output, name);
            expected = output;
            index = last + 1;
        } else {
            problems.push(format!(
                "'{}' ({}{})",
                node.name,
                node.op.name(),
                branching_reason(graph, index, input)
            ));
            expected = node.output;
            index += 1;
        }
    }
    if !problems.is_empty() {
        return Err(CompileError::UnsupportedForTfhe(problems));
    }
    if graph.outputs.first() != Some(&expected) {
        return Err(CompileError::Graph(format!(
            "output '{}' is not the end of the node chain",
            graph.value(graph.outputs[0]).name
        )));
    }
    Ok(requantise_around_max(out))
}

/// Appends the affine map of one node: merged into the linear segment
/// before it while the merged map has no more nonzero weights than the two
/// parts, else a segment of its own.
fn push_linear(
    out: &mut Vec<Segment>,
    map: AffineMap,
    input: ValueId,
    output: ValueId,
    name: &str,
) {
    if let Some(Segment {
        kind: SegmentKind::Linear(previous),
        output: previous_output,
        name: previous_name,
        ..
    }) = out.last_mut()
    {
        if *previous_output == input {
            let merged = previous.then(&map);
            if merged.nonzeros() <= previous.nonzeros() + map.nonzeros() {
                *previous = merged;
                *previous_output = output;
                *previous_name = name.to_string();
                return;
            }
        }
    }
    out.push(Segment {
        kind: SegmentKind::Linear(map),
        input,
        output,
        name: name.to_string(),
    });
}

/// Appends an elementwise region: composed into the lookup segment it
/// follows, else a segment of its own.
fn push_lookup(
    out: &mut Vec<Segment>,
    expression: Expression,
    input: ValueId,
    output: ValueId,
    name: String,
) {
    match out.last_mut() {
        Some(Segment {
            kind: SegmentKind::Lookup(previous),
            output: previous_output,
            name: previous_name,
            ..
        }) if *previous_output == input => {
            *previous = previous.then(&expression);
            *previous_output = output;
            *previous_name = name;
        }
        _ => out.push(Segment {
            kind: SegmentKind::Lookup(expression),
            input,
            output,
            name,
        }),
    }
}

/// Why node `index` (reading `input`) cannot join the chain, where a
/// branching graph is the reason.
fn branching_reason(graph: &Graph, index: usize, input: ValueId) -> &'static str {
    if computed_inputs(graph, index).len() > 1 {
        ": joins computed values (a branching graph)"
    } else if !graph.has_single_use(input) {
        ": its input is read by other nodes too (a branching graph)"
    } else {
        ""
    }
}

/// A max tree compares integers of one uniform quantisation in a window it
/// reads exactly: a lookup (the identity, requantising) goes before a max
/// that reads a linear segment's accumulators, and after one that a linear
/// segment reads (to move its values to that segment's encoding).
fn requantise_around_max(segments: Vec<Segment>) -> Vec<Segment> {
    let identity = |value: ValueId, name: &str| Segment {
        kind: SegmentKind::Lookup(Expression::input()),
        input: value,
        output: value,
        name: format!("{name} (requantise)"),
    };
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len() + 2);
    let mut iter = segments.into_iter().peekable();
    while let Some(segment) = iter.next() {
        let is_max = matches!(segment.kind, SegmentKind::Max(_));
        if is_max && matches!(out.last().map(|s| &s.kind), Some(SegmentKind::Linear(_))) {
            out.push(identity(segment.input, &segment.name));
        }
        let (output, name) = (segment.output, segment.name.clone());
        out.push(segment);
        if is_max && matches!(iter.peek().map(|s| &s.kind), Some(SegmentKind::Linear(_))) {
            out.push(identity(output, &name));
        }
    }
    out
}
