use crate::graph::Graph;
use crate::ops::{Op, PoolKind};

/// Folds a zero-valued spatial `Pad` into the `Conv` or `AveragePool` reading
/// it, as extra window padding. Explicitly padded zeros count in an average,
/// so the pool then counts padding (possible when it counted it already or
/// had none of its own).
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
                Op::Pool(p) => match p.kind {
                    PoolKind::Average { count_include_pad } => {
                        let own_pads = p
                            .window
                            .pads_begin
                            .iter()
                            .chain(&p.window.pads_end)
                            .any(|&v| v > 0);
                        !p.window.ceil_mode && (count_include_pad || !own_pads)
                    }
                    PoolKind::Max => false,
                },
                _ => false,
            };
        if !foldable {
            index += 1;
            continue;
        }
        let consumer = &mut graph.nodes[consumers[0]];
        let window = match &mut consumer.op {
            Op::Conv(c) => &mut c.window,
            Op::Pool(p) => {
                p.kind = PoolKind::Average {
                    count_include_pad: true,
                };
                &mut p.window
            }
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
