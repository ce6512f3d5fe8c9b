//! The S3 key store against a real S3-compatible server (`s3s-fs`, which
//! `.ci/run` installs): two replicas share keys through it, and keys
//! survive both replicas going away. Skipped, visibly, without `s3s-fs`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heman_server::{KeyStoreLocation, S3Location};

use crate::common::{config, digit, fixture, Running};

/// `s3s-fs`: `$HEMAN_S3S_FS`, else on the PATH, else in cargo's bin folder.
fn s3s_fs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HEMAN_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin/s3s-fs")).filter(|p| p.is_file())
    })
}

/// The S3 server process, killed when dropped.
struct S3Server(Child);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ACCESS_KEY: &str = "heman-test-access";
const SECRET_KEY: &str = "heman-test-secret-key";

fn start_s3(binary: &PathBuf, root: &std::path::Path) -> (S3Server, SocketAddr) {
    // A port the system just gave out; s3s-fs binds it right after.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(binary)
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let server = S3Server(child);
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "s3s-fs did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_keys_through_s3() {
    let Some(binary) = s3s_fs() else {
        let note = "SKIPPED replicas_share_keys_through_s3: s3s-fs not found (cargo install --locked s3s-fs --version 0.12.0 --features binary, or set HEMAN_S3S_FS)";
        println!("{note}");
        eprintln!("{note}");
        return;
    };
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("s3");
    // s3s-fs maps each bucket to a folder of its root.
    std::fs::create_dir_all(root.join("heman-keys")).unwrap();
    let (_s3, addr) = start_s3(&binary, &root);
    let location = KeyStoreLocation::S3(S3Location {
        bucket: "heman-keys".into(),
        prefix: "replicated/eval".into(),
        endpoint: Some(format!("http://{addr}")),
        region: Some("us-east-1".into()),
        allow_http: true,
        credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
    });
    let replica = |_: usize| {
        let mut cfg = config(&fx.repo, work.path());
        cfg.key_store = location.clone();
        cfg
    };
    let a = Running::start(replica(0)).await;
    let b = Running::start(replica(1)).await;
    let client_a = heman_server::client::Client::new(&a.http.to_string()).unwrap();
    let client_b = heman_server::client::Client::new(&b.http.to_string()).unwrap();

    // Registered on A, in the bucket, usable on B.
    let key_id = client_a
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    let object = root
        .join("heman-keys/replicated/eval")
        .join(format!("{key_id}.keys"));
    assert_eq!(
        std::fs::read(&object).unwrap(),
        fx.eval_keys,
        "object in the bucket"
    );
    assert!(client_b.key_registered("digits", &key_id).await.unwrap());
    assert!(!client_b
        .key_registered("digits", &"c".repeat(64))
        .await
        .unwrap());
    let input = digit(7);
    let ct = fx.encrypt(&input);
    let out = client_b.infer("digits", &key_id, &ct).await.unwrap();
    fx.assert_matches(&out, &input, "replica B with keys registered on A");
    let e = client_b
        .infer("digits", &"d".repeat(64), &ct)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown key_id"), "{e}");
    a.stop().await;
    b.stop().await;

    // A fresh replica (empty memory) still finds the keys.
    let c = Running::start(replica(2)).await;
    let client_c = heman_server::client::Client::new(&c.http.to_string()).unwrap();
    let out = client_c.infer("digits", &key_id, &ct).await.unwrap();
    fx.assert_matches(&out, &input, "fresh replica");
    c.stop().await;
}
