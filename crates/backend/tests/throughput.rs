//! Throughput packing through the seam, as the CLI runs it: the digits
//! example compiled for a batch per ciphertext, a batch encrypted, inferred
//! and decrypted, against the same inputs one by one in latency packing and
//! against the plaintext model; and the batches and files it must refuse.

use std::path::Path;

use heman_backend::{
    registry, Compilation, CompileOptions, DataOwner, EvaluationKeys, ModelOwner, ModelSource,
    ServingOptions, Silent,
};
use heman_model::io::dataset::LabelledSet;
use heman_model::Tensor;
use heman_testkit::repo_root;

/// Largest difference between a batched and a latency output, relative to
/// the largest calibrated |output|: each carries its own flooding, sized
/// for an error per output of 2^-8 of it; the largest of hundreds of
/// outputs stays within four times that, for either.
const TOLERANCE: f64 = 2.0 / 64.0;

/// The digits example (x*x activations) with its calibration.
fn source() -> ModelSource {
    let dir = repo_root().join("examples/digits");
    ModelSource::load(
        &dir.join("digits_square.onnx"),
        &dir.join("calibration.npz"),
        &Silent,
    )
    .unwrap()
}

/// The example's first `count` test images, each `[1, 1, 8, 8]`.
fn test_images(count: usize) -> Vec<Tensor> {
    let set = LabelledSet::load(&repo_root().join("examples/digits/test"), Some(count)).unwrap();
    set.inputs.into_iter().map(|s| s.tensor).collect()
}

/// `items` stacked along a new first axis: `[B, 1, 8, 8]`.
fn stacked(items: &[Tensor]) -> Tensor {
    let shape = std::iter::once(items.len()).chain(items[0].shape()[1..].iter().copied());
    let data = items.iter().flat_map(|x| x.data().to_vec()).collect();
    Tensor::new(shape.collect(), data)
}

/// Both parties of a compiled model, keys made and registered.
struct Parties {
    compilation: Compilation,
    owner: Box<dyn ModelOwner>,
    data_owner: Box<dyn DataOwner>,
    keys: EvaluationKeys,
}

impl Parties {
    fn new(source: &ModelSource, options: &CompileOptions) -> Self {
        let backend = registry::by_name("ckks").unwrap();
        let compilation = backend.compile(source, options, &Silent).unwrap();
        let origin = Path::new("digits");
        let owner = backend
            .load_model(&compilation.model, origin, ServingOptions::default())
            .unwrap();
        let files = backend
            .keygen(compilation.keyparams.as_bytes(), origin, &Silent)
            .unwrap();
        let data_owner = backend
            .data_owner(compilation.keyparams.as_bytes(), &files.secret, origin)
            .unwrap();
        let keys = owner.parse_keys(&files.evaluation, origin).unwrap();
        owner.check_keys(&keys).unwrap();
        Self {
            compilation,
            owner,
            data_owner,
            keys,
        }
    }

    /// Encrypts `x`, infers, decrypts: the model's only output.
    fn run(&self, x: &Tensor) -> Tensor {
        let input = self.data_owner.encrypt(x, "x.npy").unwrap();
        let output = self.infer(&input).unwrap();
        let mut y = self.data_owner.decrypt(&output, Path::new("y")).unwrap();
        assert_eq!(y.len(), 1);
        y.remove(0)
    }

    fn infer(&self, input: &[u8]) -> heman_backend::Result<Vec<u8>> {
        self.owner
            .infer(&self.keys, input, Path::new("x.ct"), &mut |_| {})
            .map(|inference| inference.output)
    }
}

fn throughput() -> CompileOptions {
    CompileOptions {
        packing: Some("throughput".into()),
        ..CompileOptions::default()
    }
}

fn output_max(source: &ModelSource) -> f64 {
    source
        .joined_output()
        .1
        .map_or(1.0, |(lo, hi)| lo.abs().max(hi.abs()))
}

fn argmax(values: &[f64]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap()
}

#[test]
fn batched_outputs_are_the_latency_outputs_within_the_flooding() {
    let source = source();
    let batched = Parties::new(&source, &throughput());
    let latency = Parties::new(&source, &CompileOptions::default());
    assert!(
        batched
            .compilation
            .keyparams
            .contains("\"packing\": \"throughput\""),
        "the keyparams record the packing"
    );
    assert_eq!(latency.owner.max_batch(), None);
    let slots = batched.owner.max_batch().expect("a throughput model");
    let images = test_images(12);
    let y = batched.run(&stacked(&images));
    assert_eq!(y.shape(), &[12, 10], "the batch axis first");
    let tolerance = TOLERANCE * output_max(&source);
    for (b, x) in images.iter().enumerate() {
        let one = latency.run(x);
        let row = &y.data()[b * 10..(b + 1) * 10];
        let plain = source.graph.run(std::slice::from_ref(x)).unwrap();
        for (got, want) in row.iter().zip(one.data()) {
            assert!(
                (got - want).abs() <= tolerance,
                "input {b}: batched {got} against latency {want} (tolerance {tolerance})"
            );
        }
        assert_eq!(
            argmax(row),
            argmax(plain[0].data()),
            "input {b} keeps the plaintext class"
        );
    }
    assert!(slots >= 4096, "N = 2^13 at least: {slots} slots");
}

#[test]
fn a_batch_of_one_and_a_batch_of_every_slot() {
    let source = source();
    let parties = Parties::new(&source, &throughput());
    let slots = parties.owner.max_batch().unwrap();
    let images = test_images(100);
    let tolerance = TOLERANCE * output_max(&source);
    // One image, with and without its batch axis.
    let alone = parties.run(&images[3]);
    assert_eq!(alone.shape(), &[1, 10]);
    let plain = source.graph.run(std::slice::from_ref(&images[3])).unwrap();
    for (got, want) in alone.data().iter().zip(plain[0].data()) {
        assert!((got - want).abs() <= tolerance, "{got} against {want}");
    }
    let with_axis = parties.run(&stacked(&images[3..4]));
    assert_eq!(with_axis.shape(), &[1, 10]);
    // Every slot: the images repeated, each copy decrypting to its class.
    let full: Vec<Tensor> = images.iter().cycle().take(slots).cloned().collect();
    let y = parties.run(&stacked(&full));
    assert_eq!(y.shape(), &[slots, 10]);
    let classes: Vec<usize> = images
        .iter()
        .map(|x| argmax(source.graph.run(std::slice::from_ref(x)).unwrap()[0].data()))
        .collect();
    let agree = (0..slots)
        .filter(|&b| argmax(&y.data()[b * 10..(b + 1) * 10]) == classes[b % images.len()])
        .count();
    assert!(
        agree * 1000 >= slots * 995,
        "{agree} of {slots} keep the plaintext class"
    );
    // A batch past the slots is refused before anything is encrypted.
    let over: Vec<Tensor> = images.iter().cycle().take(slots + 1).cloned().collect();
    let e = parties
        .data_owner
        .encrypt(&stacked(&over), "over.npy")
        .unwrap_err();
    assert!(
        e.is_refusal() && e.to_string().contains(&format!("a batch of {}", slots + 1)),
        "{e}"
    );
}

#[test]
fn wrong_batch_axes_and_packings_are_refused_by_name() {
    let source = source();
    let batched = Parties::new(&source, &throughput());
    let latency = Parties::new(&source, &CompileOptions::default());
    let images = test_images(3);
    // The batch axis last is not a batch.
    let data: Vec<f64> = (0..8 * 8 * 3).map(|v| v as f64 / 192.0).collect();
    let last = Tensor::new(vec![1, 8, 8, 3], data);
    let e = batched.data_owner.encrypt(&last, "last.npy").unwrap_err();
    assert!(
        e.is_refusal() && e.to_string().contains("last.npy") && e.to_string().contains("batch"),
        "{e}"
    );
    // A latency model says how to compile for batches.
    let e = latency
        .data_owner
        .encrypt(&stacked(&images), "three.npy")
        .unwrap_err();
    assert!(e.to_string().contains("--packing throughput"), "{e}");
    // A batch sent to a latency model of the same parameters, and the
    // reverse, are refused naming both packings.
    let batch = batched.data_owner.encrypt(&stacked(&images), "b").unwrap();
    let one = latency.data_owner.encrypt(&images[0], "x").unwrap();
    if batched.owner.key_fingerprint() == latency.owner.key_fingerprint() {
        let e = latency.infer(&batch).unwrap_err();
        assert!(
            e.is_refusal() && e.to_string().contains("latency packing"),
            "{e}"
        );
        let e = batched.infer(&one).unwrap_err();
        assert!(
            e.is_refusal() && e.to_string().contains("throughput packing"),
            "{e}"
        );
    } else {
        assert!(latency.infer(&batch).unwrap_err().is_refusal());
        assert!(batched.infer(&one).unwrap_err().is_refusal());
    }
    // Options that do not fit: a batch with latency packing, a batch past
    // the largest ring, throughput on TFHE.
    let ckks = registry::by_name("ckks").unwrap();
    let both = CompileOptions {
        packing: Some("latency".into()),
        batch: Some(16),
        ..CompileOptions::default()
    };
    let e = ckks.compile(&source, &both, &Silent).err().unwrap();
    assert!(e.to_string().contains("--batch"), "{e}");
    let huge = CompileOptions {
        batch: Some(1 << 16),
        ..CompileOptions::default()
    };
    let e = ckks.compile(&source, &huge, &Silent).err().unwrap();
    assert!(e.to_string().contains("at most 32768"), "{e}");
    let tfhe = registry::by_name("tfhe").unwrap();
    let e = tfhe.compile(&source, &throughput(), &Silent).err().unwrap();
    assert!(e.to_string().contains("--packing throughput"), "{e}");
}

#[test]
fn a_batch_size_chooses_the_ring() {
    let source = source();
    let options = CompileOptions {
        batch: Some(8192),
        ..CompileOptions::default()
    };
    let backend = registry::by_name("ckks").unwrap();
    let compilation = backend.compile(&source, &options, &Silent).unwrap();
    let keyparams: serde_json::Value = serde_json::from_str(&compilation.keyparams).unwrap();
    assert_eq!(
        keyparams["packing"], "throughput",
        "--batch alone asks for it"
    );
    assert_eq!(keyparams["slots"], 8192);
    assert_eq!(keyparams["rotation_steps"].as_array().unwrap().len(), 0);
}
