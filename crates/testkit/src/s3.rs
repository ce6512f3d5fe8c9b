//! A real S3-compatible server for the key-store tests: `s3s-fs`, which
//! `.ci/run` installs (`cargo install --locked s3s-fs --version 0.12.0
//! --features binary`); tests skip, saying so, where it is missing.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the test server takes.
pub const ACCESS_KEY: &str = "heman-test-access";
/// Its secret key.
pub const SECRET_KEY: &str = "heman-test-secret-key";
/// What a skipped test prints when `s3s-fs` is missing.
pub const MISSING: &str = "s3s-fs not found (cargo install --locked s3s-fs --version 0.12.0 --features binary, or set HEMAN_S3S_FS)";

/// `s3s-fs`: `$HEMAN_S3S_FS`, else on the PATH, else in cargo's bin folder.
pub fn s3s_fs() -> Option<PathBuf> {
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

/// An `s3s-fs` process serving the folders of a root as buckets, killed
/// when dropped.
pub struct S3Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl S3Server {
    /// Starts `binary` on a free port of loopback over `root` (each bucket
    /// a folder of it), with [`ACCESS_KEY`] and [`SECRET_KEY`].
    pub fn start(binary: &Path, root: &Path) -> Self {
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
        let server = Self { child, addr };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "s3s-fs did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
