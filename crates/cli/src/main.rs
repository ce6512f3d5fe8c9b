//! `heman`: encrypted inference of ONNX networks, command-line interface.

mod commands;
mod progress;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Inference allocates and frees ciphertexts of hundreds of KiB by the
// thousand: glibc's malloc maps and unmaps each, and on a virtual machine
// every unmap's TLB shootdown and every first touch of a fresh page costs a
// trap. mimalloc keeps freed pages for reuse (a throughput model's inference
// on cryptonets_square: 4.4 s with glibc's malloc, 2.3-3.0 s with pages kept).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "heman",
    version,
    about = "Privacy-preserving inference of ONNX networks on encrypted data"
)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// More logging (-v: per-step details, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Keyparams(commands::workflow::KeyparamsArgs),
    Keygen(commands::workflow::KeygenArgs),
    Encrypt(commands::workflow::EncryptArgs),
    Inference(commands::workflow::InferenceArgs),
    Decrypt(commands::workflow::DecryptArgs),
    Demo(commands::demo::DemoArgs),
    Bench(commands::bench::BenchArgs),
    Eval(commands::eval::EvalArgs),
    Calibrate(commands::calibrate::CalibrateArgs),
    Inspect(commands::inspect::InspectArgs),
    Serve(commands::serve::ServeArgs),
    Query(commands::query::QueryArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`heman inspect x | head`), as Unix tools do,
    // instead of failing a print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // A server's log is its record: `serve` logs at info level by default.
    init_logging(cli.verbose + matches!(cli.command, Command::Serve(_)) as u8);
    if let Some(threads) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
        {
            eprintln!("error: --threads {threads}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Keyparams(args) => commands::workflow::keyparams(args),
        Command::Keygen(args) => commands::workflow::keygen(args),
        Command::Encrypt(args) => commands::workflow::encrypt(args),
        Command::Inference(args) => commands::workflow::inference(args),
        Command::Decrypt(args) => commands::workflow::decrypt(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Calibrate(args) => commands::calibrate::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Query(args) => commands::query::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    heman_server::logging::init(default);
}
