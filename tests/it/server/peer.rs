//! Peer processes the differential tests run beside Argus: a child killed and reaped on drop
//! (also when an assertion fails), and real Prometheus started on a free loopback port.

use super::harness::{free_port, try_request};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `prometheus` package puts the binary.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A child process, killed and reaped on drop.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `bin` exists; when it does not, reports `test` as unable to run
/// ([`crate::missing`]: a failure under `CI=true`) naming the Debian `package`, and the caller
/// returns.
pub fn installed(bin: &str, package: &str, test: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    crate::missing(
        test,
        &format!("{bin} is not installed (Debian package {package})"),
    );
    false
}

/// Starts real Prometheus with `config`, its TSDB in `data`, on a free loopback port, with
/// `--log.level=warn` and `extra` flags. It is not ready yet: see [`wait_ready`].
pub fn prometheus(config: &Path, data: &Path, extra: &[&str]) -> (Peer, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("loopback address");
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    (Peer(child), addr)
}

/// Waits until `addr` answers `/-/ready` with 200, failing the test after `timeout`.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !try_request(addr, "GET", "/-/ready", &[], b"").is_ok_and(|r| r.status == 200) {
        assert!(Instant::now() < deadline, "{addr} not ready in {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
