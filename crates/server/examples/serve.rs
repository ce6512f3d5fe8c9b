//! Runs the server until Ctrl-C, for trying it before `heman serve` exists:
//! `cargo run --release -p heman-server --example serve -- MODEL_REPO KEY_DIR [ADDR]`.

use heman_server::{serve, Config};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, keys, rest @ ..] = &args[..] else {
        eprintln!("usage: serve MODEL_REPO KEY_DIR [ADDR, default 127.0.0.1:8000]");
        std::process::exit(2);
    };
    let addr = rest
        .first()
        .map(String::as_str)
        .unwrap_or("127.0.0.1:8000")
        .parse()
        .expect("ADDR is host:port");
    let config = Config::new(repo, keys, addr);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = serve(config, shutdown).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
