//! `heman demo`: the whole two-party flow on the repository's example.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use heman_backend::keys_dir::{EVAL_KEYS, KEYPARAMS, SECRET_KEY};
use heman_model::io::dataset::LabelledSet;
use heman_model::io::npy::{read_npy, write_npy, NpyDtype};
use heman_model::load_onnx;

use crate::workflow::{self, file_size, human, BackendArgs};

/// Run keyparams, keygen, encrypt, inference and decrypt on the bundled digits example.
#[derive(Args)]
pub struct DemoArgs {
    /// How many test digits to classify encrypted.
    #[arg(short, long, default_value_t = 20)]
    count: usize,
    /// Keep the files here (default: a temporary directory, removed afterwards).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// CKKS runs the x*x network, backends with exact activations (TFHE)
    /// the ReLU one.
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let example = workflow::example_dir();
    let backend = args.backend.backend()?;
    let exact = backend.exact_activations();
    let model = workflow::example_model(backend);
    let stem = model
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let temporary = args.workdir.is_none();
    let work = args
        .workdir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("heman-demo-{}", std::process::id())));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let (owner, data) = (work.join("model-owner"), work.join("data-owner"));
    std::fs::create_dir_all(&owner)?;
    std::fs::create_dir_all(&data)?;
    println!(
        "model: {} ({} CNN, 8x8 digits)",
        model.display(),
        if exact { "ReLU" } else { "x*x" }
    );

    let t = Instant::now();
    let kp_path = data.join(KEYPARAMS);
    let compiled = owner.join(format!("{stem}.heman"));
    let calibration = example.join("calibration.npz");
    let compilation =
        workflow::keyparams(&model, &calibration, &args.backend, &kp_path, &compiled)?;
    println!(
        "1. keyparams   {:>8.3} s  {}; model {}",
        t.elapsed().as_secs_f64(),
        compilation.report.summary,
        human(file_size(&compiled))
    );

    let t = Instant::now();
    let keys = data.join("keys");
    workflow::keygen(&kp_path, &keys)?;
    println!(
        "2. keygen      {:>8.3} s  eval.keys {}, secret.key {}",
        t.elapsed().as_secs_f64(),
        human(file_size(&keys.join(EVAL_KEYS))),
        human(file_size(&keys.join(SECRET_KEY)))
    );

    let set = LabelledSet::load(&example.join("test"), Some(args.count))?;
    let files = Files {
        compiled,
        data,
        keys,
    };
    let what = if backend.encrypts() {
        "encrypted"
    } else {
        "simulated (nothing encrypted)"
    };
    classify(&files, &set, &load_onnx(&model)?, what)?;
    if temporary {
        std::fs::remove_dir_all(&work).ok();
    } else {
        println!("files kept in {}", work.display());
    }
    Ok(())
}

/// Where the demo's parties keep their files.
struct Files {
    compiled: PathBuf,
    data: PathBuf,
    keys: PathBuf,
}

/// Steps 3 to 5 on every test digit, through the files, with the time per
/// step and the agreement with the plaintext model.
fn classify(
    files: &Files,
    set: &LabelledSet,
    graph: &heman_model::Graph,
    what: &str,
) -> Result<()> {
    let (mut agree, mut correct) = (0, 0);
    let mut seconds = [0.0; 3];
    let mut sizes = (0, 0);
    let data = &files.data;
    let (input, enc, out_enc, out) = (
        data.join("input.npy"),
        data.join("input.enc"),
        data.join("output.enc"),
        data.join("output.npy"),
    );
    let timed = |slot: &mut f64, step: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        let t = Instant::now();
        step()?;
        *slot += t.elapsed().as_secs_f64();
        Ok(())
    };
    for (index, sample) in set.inputs.iter().enumerate() {
        write_npy(&input, &sample.tensor, NpyDtype::F64)?;
        let [t_enc, t_inf, t_dec] = &mut seconds;
        timed(t_enc, &mut || workflow::encrypt(&files.keys, &input, &enc))?;
        timed(t_inf, &mut || {
            workflow::inference(&files.compiled, &files.keys.join(EVAL_KEYS), &enc, &out_enc)
                .map(|_| ())
        })?;
        timed(t_dec, &mut || {
            workflow::decrypt(&files.keys, &out_enc, &out, None).map(|_| ())
        })?;
        sizes = (file_size(&enc), file_size(&out_enc));
        let decrypted = read_npy(&out)?;
        let plain = graph.run(std::slice::from_ref(&sample.tensor))?.remove(0);
        agree += (decrypted.argmax() == plain.argmax()) as usize;
        correct += set.is_correct(index, &decrypted) as usize;
    }
    let n = set.inputs.len().max(1) as f64;
    println!(
        "3. encrypt     {:>8.3} s  per image, input.enc {}",
        seconds[0] / n,
        human(sizes.0)
    );
    println!(
        "4. inference   {:>8.3} s  per image, output.enc {}",
        seconds[1] / n,
        human(sizes.1)
    );
    println!("5. decrypt     {:>8.3} s  per image", seconds[2] / n);
    println!(
        "{what} accuracy {correct}/{} ({:.1}%), same prediction as plaintext on {agree}/{}",
        set.inputs.len(),
        100.0 * correct as f64 / n,
        set.inputs.len()
    );
    Ok(())
}
