use crate::graph::Graph;
use crate::ops::{Op, PoolKind};

/// Folds a zero-valued spatial `Pad` into the `Conv` (or `AveragePool` that
/// counts padding) reading it, as extra window padding.
pub fn fold_pad(graph: &mut Graph) {
    let mut index = 0;
    while index < graph.nodes.len() {
        let pad_node = &graph.nodes[index];
        let (Op::Pad(pad), padded) = (&pad_node.op, pad_node.output) else {
            index += 1;
            continue;
        };
        let Some((begin, end)) = pad.spatial_zero_pads() else {
            index += 1;
            continue;
        };
        let consumers = graph.consumers(padded);
        let source = pad_node.inputs[0];
        let foldable = graph.has_single_use(padded)
            && match &graph.nodes[consumers[0]].op {
                Op::Conv(_) => graph.nodes[consumers[0]].inputs[0] == padded,
                Op::Pool(p) => {
                    matches!(p.kind, PoolKind::Average { count_include_pad: true })
                        && !p.window.ceil_mode
                }
                _ => false,
            };
        if !foldable {
            index += 1;
            continue;
        }
        let consumer = &mut graph.nodes[consumers[0]];
        let window = match &mut consumer.op {
            Op::Conv(c) => &mut c.window,
            Op::Pool(p) => &mut p.window,
            _ => unreachable!("checked above"),
        };
        for axis in 0..begin.len() {
            window.pads_begin[axis] += begin[axis];
            window.pads_end[axis] += end[axis];
        }
        consumer.inputs[0] = source;
        graph.nodes.remove(index);
    }
}
