//! Runs a [`Plan`] on plain slot vectors with exactly the slot operations the
//! encrypted runtime performs: the reference that layouts and diagonals are
//! tested against, free of encryption noise.

use heman_model::Tensor;

use crate::ckks::linear::LinearTransform;
use crate::ckks::plan::{Plan, PlanStage};

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

/// One lowered affine stage on plain slot vectors, as the runtime computes
/// it: window sums, diagonal products, rotate-and-sum steps, then the bias.
pub fn apply_linear(transform: &LinearTransform, input: &[Vec<f64>]) -> Vec<Vec<f64>> {
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
    for (ct, bias) in out.iter_mut().zip(&transform.bias) {
        for &step in &transform.sum_steps {
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

/// The plan's output for `input`, activations evaluated as their polynomials.
pub fn simulate(plan: &Plan, input: &Tensor) -> Tensor {
    let cts = simulate_slots(plan, input);
    let output = Tensor::new(plan.output_shape.clone(), plan.output_layout.unpack(&cts));
    plan.postprocess.iter().fold(output, |t, op| op.eval(&[&t]))
}

/// Every slot of every output ciphertext of the plan for `input` (before the
/// data owner's postprocessing), slots outside the output layout included.
pub fn simulate_slots(plan: &Plan, input: &Tensor) -> Vec<Vec<f64>> {
    let mut cts = plan.input_layout.pack(input.data());
    for stage in &plan.stages {
        cts = match stage {
            PlanStage::Linear(t) => apply_linear(t, &cts),
            PlanStage::Square => cts
                .into_iter()
                .map(|v| v.iter().map(|x| x * x).collect())
                .collect(),
            PlanStage::Activation { polynomial, .. } => {
                let p = polynomial.approximation().expect("a fitted polynomial");
                cts.into_iter()
                    .map(|v| v.iter().map(|&x| p.evaluate(x)).collect())
                    .collect()
            }
        };
    }
    cts
}
