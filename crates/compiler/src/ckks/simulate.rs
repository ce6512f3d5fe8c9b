//! Runs a [`Plan`] on plain slot vectors with exactly the slot operations the
//! encrypted runtime performs: the reference that layouts and diagonals are
//! tested against, free of encryption noise.

use heman_model::Tensor;

use crate::ckks::linear::LinearTransform;
use crate::ckks::plan::{Packing, Plan, StageOp, WeightRows};

/// Left rotation: slot `s` receives slot `s + k`.
pub fn rotate(v: &[f64], k: usize) -> Vec<f64> {
    let n = v.len();
    (0..n).map(|s| v[(s + k) % n]).collect()
}

/// `x + sum_s rot(x, s)` for each round in turn.
fn window_sums(rounds: &[Vec<usize>], x: &[f64]) -> Vec<f64> {
    rounds.iter().fold(x.to_vec(), |x, round| {
        let mut sum = x.clone();
        for &step in round {
            for (a, b) in sum.iter_mut().zip(rotate(&x, step)) {
                *a += b;
            }
        }
        sum
    })
}

/// One part of a lowered affine stage on plain slot vectors, as the
/// runtime computes it: window sums, then the diagonal products, summed per
/// output ciphertext (before the rotate-and-sum steps and the bias).
fn diagonal_products(transform: &LinearTransform, input: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let summed: Vec<Vec<f64>>;
    let input = if transform.window_sums.is_empty() {
        input
    } else {
        summed = input
            .iter()
            .map(|x| window_sums(&transform.window_sums, x))
            .collect();
        &summed
    };
    let slots = input[0].len();
    let mut out = vec![vec![0.0; slots]; transform.output_ciphertexts];
    for block in &transform.blocks {
        let x = &input[block.input];
        for (g, terms) in &block.giant_steps {
            let mut inner = vec![0.0; slots];
            for (b, diagonal) in terms {
                let rotated = rotate(x, *b);
                for &(s, w) in &diagonal.entries {
                    inner[s as usize] += w * rotated[s as usize];
                }
            }
            for (o, v) in out[block.output].iter_mut().zip(rotate(&inner, *g)) {
                *o += v;
            }
        }
    }
    out
}

/// A lowered affine stage (one transform per input, `inputs[k]` read by
/// `parts[k]`) on plain slot vectors, as the runtime computes it: each
/// part's diagonal products, their sum, the rotate-and-sum steps, then the
/// bias.
pub fn apply_linear_parts(parts: &[LinearTransform], inputs: &[&[Vec<f64>]]) -> Vec<Vec<f64>> {
    let mut out: Option<Vec<Vec<f64>>> = None;
    for (part, input) in parts.iter().zip(inputs) {
        let products = diagonal_products(part, input);
        out = Some(match out {
            None => products,
            Some(mut sum) => {
                for (a, b) in sum.iter_mut().flatten().zip(products.iter().flatten()) {
                    *a += b;
                }
                sum
            }
        });
    }
    let mut out = out.expect("an affine stage has at least one part");
    let first = &parts[0];
    for (ct, bias) in out.iter_mut().zip(&first.bias) {
        for &step in &first.sum_steps {
            let rotated = rotate(ct, step);
            for (a, b) in ct.iter_mut().zip(rotated) {
                *a += b;
            }
        }
        for &(s, b) in bias {
            ct[s as usize] += b;
        }
    }
    out
}

/// A weighted-sum stage on plain slot vectors, as the runtime computes it:
/// per output element, the sum over the parts of its weighted input
/// ciphertexts, then its bias in every slot.
pub fn apply_weighted_sums(parts: &[WeightRows], inputs: &[&[Vec<f64>]]) -> Vec<Vec<f64>> {
    let slots = inputs[0][0].len();
    let mut out = vec![vec![0.0; slots]; parts[0].rows.len()];
    for (part, input) in parts.iter().zip(inputs) {
        let summed: Vec<Vec<f64>>;
        let input = if part.window_sums.is_empty() {
            *input
        } else {
            summed = part
                .window_sums
                .iter()
                .map(|window| {
                    let mut sum = vec![0.0; slots];
                    for &i in window {
                        sum.iter_mut()
                            .zip(&input[i as usize])
                            .for_each(|(a, x)| *a += x);
                    }
                    sum
                })
                .collect();
            &summed
        };
        for (y, row) in out.iter_mut().zip(&part.rows) {
            for &(i, w) in row {
                for (a, x) in y.iter_mut().zip(&input[i as usize]) {
                    *a += w * x;
                }
            }
        }
    }
    for (y, &b) in out.iter_mut().zip(&parts[0].bias) {
        y.iter_mut().for_each(|a| *a += b);
    }
    out
}

/// One single-input lowered affine stage on plain slot vectors.
pub fn apply_linear(transform: &LinearTransform, input: &[Vec<f64>]) -> Vec<Vec<f64>> {
    apply_linear_parts(std::slice::from_ref(transform), &[input])
}

/// The plan's outputs for `input`, activations evaluated as their
/// polynomials, post-processed as the data owner would.
pub fn simulate(plan: &Plan, input: &Tensor) -> Vec<Tensor> {
    let cts = simulate_slots(plan, input);
    let joined = Tensor::new(plan.output_shape.clone(), output_values(plan, &cts));
    crate::graph::split_outputs(&joined, &plan.outputs)
}

/// Every slot of every output ciphertext of the plan for `input` (before the
/// data owner's postprocessing), slots outside the output layout included.
pub fn simulate_slots(plan: &Plan, input: &Tensor) -> Vec<Vec<f64>> {
    let mut values = simulate_values(plan, input);
    values.pop().expect("the input at least")
}

/// Every value of the plan for `input` (0 the input, `k + 1` stage `k`'s
/// output), every slot of every ciphertext, as the runtime computes them
/// without noise (a bootstrap is the identity). A throughput plan's
/// ciphertexts are simulated by the one slot that holds `input`: its slots
/// never meet.
pub fn simulate_values(plan: &Plan, input: &Tensor) -> Vec<Vec<Vec<f64>>> {
    let packed = match plan.packing {
        Packing::Latency => plan.input_layout.pack(input.data()),
        Packing::Throughput => input.data().iter().map(|&v| vec![v]).collect(),
    };
    simulate_packed(plan, packed)
}

/// The output tensor's values in the slot vectors [`simulate_slots`]
/// returns.
pub fn output_values(plan: &Plan, cts: &[Vec<f64>]) -> Vec<f64> {
    match plan.packing {
        Packing::Latency => plan.output_layout.unpack(cts),
        Packing::Throughput => cts.iter().map(|ct| ct[0]).collect(),
    }
}

/// Every value of the plan (as [`simulate_values`]) from its input's slot
/// vectors as packed: a throughput plan's batch, say.
pub fn simulate_packed(plan: &Plan, packed: Vec<Vec<f64>>) -> Vec<Vec<Vec<f64>>> {
    let mut values: Vec<Vec<Vec<f64>>> = vec![packed];
    for stage in &plan.stages {
        let x = |k: usize| &values[stage.inputs[k]];
        let elementwise = |f: &dyn Fn(f64) -> f64| -> Vec<Vec<f64>> {
            x(0).iter()
                .map(|v| v.iter().map(|&a| f(a)).collect())
                .collect()
        };
        let y = match &stage.op {
            StageOp::Linear(parts) => {
                let inputs: Vec<&[Vec<f64>]> = (0..parts.len()).map(|k| x(k).as_slice()).collect();
                apply_linear_parts(parts, &inputs)
            }
            StageOp::WeightedSum { parts, .. } => {
                let inputs: Vec<&[Vec<f64>]> = (0..parts.len()).map(|k| x(k).as_slice()).collect();
                apply_weighted_sums(parts, &inputs)
            }
            StageOp::Square => elementwise(&|a| a * a),
            StageOp::Product => x(0)
                .iter()
                .zip(x(1))
                .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a * b).collect())
                .collect(),
            StageOp::Activation { polynomial, .. } => {
                let p = polynomial.approximation().expect("a fitted polynomial");
                elementwise(&|a| p.evaluate(a))
            }
            StageOp::Bootstrap { .. } => x(0).clone(),
        };
        values.push(y);
    }
    values
}
