//! One running `stompbox` process per test: built once, started on ephemeral ports, killed on
//! drop.
//!
//! Ports come from the broker's ready line (`stompbox ready stomp=ADDR http=ADDR`), never from
//! guessing a free port, so parallel tests cannot race for one.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::client::TcpClient;

/// How long a started broker has to print its ready line; generous because two cores are
/// shared with other builds.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// An argon2id hash of `password` for a users file, made by the broker's own
/// `stompbox hash-password`, so tests write users files exactly as operators do.
pub fn hash_password(password: &str) -> String {
    let output = Command::new(binary())
        .args(["hash-password", "--password", password])
        .output()
        .expect("stompbox hash-password runs");
    assert!(output.status.success(), "hash-password failed");
    String::from_utf8(output.stdout)
        .expect("UTF-8 hash")
        .trim()
        .to_owned()
}

/// Path of the broker binary: `$STOMPBOX_BIN`, or the workspace's debug build, built once per
/// test process (concurrent test binaries simply wait on cargo's lock).
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(bin) = std::env::var_os("STOMPBOX_BIN") {
            return PathBuf::from(bin);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("conformance-tests lives inside the workspace")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "--quiet", "-p", "stompbox", "--bin", "stompbox"])
            .output()
            .expect("cargo can be run to build the broker");
        assert!(
            output.status.success(),
            "building stompbox failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => workspace.join(dir),
            None => workspace.join("target"),
        };
        target.join("debug").join("stompbox")
    })
}

/// An HTTP response as [`Broker::http_response`] read it.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Status line and headers.
    pub head: String,
    pub body: String,
}

/// A running broker. Dropping it kills the process (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    exit: Option<ExitStatus>,
    /// STOMP over TCP.
    pub stomp_addr: SocketAddr,
    /// HTTP / WebSocket.
    pub http_addr: SocketAddr,
    /// STOMP over TLS (`--stomp-tls-listen`), when started with it.
    pub stomp_tls_addr: Option<SocketAddr>,
    /// HTTPS / WSS (`--https-listen`), when started with it.
    pub https_addr: Option<SocketAddr>,
    /// The broker's stderr; printed by failing tests' output when it helps.
    pub log_path: PathBuf,
    scratch: PathBuf,
}

impl Broker {
    /// Starts a broker on ephemeral loopback ports with `extra` flags appended, and waits for
    /// its ready line.
    pub fn start(extra: &[&str]) -> Broker {
        Self::start_in(None, extra)
    }

    /// [`Broker::start`] with the embedded store in `data_dir` (cluster tests give several
    /// nodes one store, standing in for the shared PostgreSQL of a real deployment).
    pub fn start_in(data_dir: Option<&Path>, extra: &[&str]) -> Broker {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let scratch = std::env::temp_dir().join(format!(
            "stompbox-conformance-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let data_dir = data_dir.map_or_else(|| scratch.join("data"), Path::to_path_buf);
        std::fs::create_dir_all(&data_dir).expect("data directory can be created");
        std::fs::create_dir_all(&scratch).expect("scratch directory can be created");
        let log_path = scratch.join("stderr.log");
        let log = std::fs::File::create(&log_path).expect("log file can be created");

        let mut command = Command::new(binary());
        // The broker reads STOMPBOX_* variables as configuration; only the flags count here.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STOMPBOX_") {
                command.env_remove(name);
            }
        }
        // Stop at once: no load balancer polls a test broker's readiness. Variables rather
        // than flags, so an older binary (STOMPBOX_BIN) that lacks them still starts; a test's
        // own flags override them.
        command.env("STOMPBOX_DRAIN_DELAY", "0");
        command.env("STOMPBOX_DRAIN_PERIOD", "0");
        let mut child = command
            .args([
                "--stomp-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        println!(
            "broker pid {} args {extra:?}, log {}",
            child.id(),
            log_path.display()
        );

        let stdout = child.stdout.take().expect("stdout is piped");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = line_tx.send(line);
            }
            // Keep draining so a chatty broker never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match line_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker printed no ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let (stomp_addr, http_addr) = parse_ready_line(&line)
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"));
        Broker {
            child,
            exit: None,
            stomp_addr,
            http_addr,
            stomp_tls_addr: ready_line_field(&line, "stomp_tls="),
            https_addr: ready_line_field(&line, "https="),
            log_path,
            scratch,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `ws://127.0.0.1:PORT/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http_addr)
    }

    /// A TCP client that completed CONNECT (1.2) as `login`.
    pub async fn client(&self, login: &str) -> TcpClient {
        TcpClient::connect(self.stomp_addr, login).await
    }

    /// SIGKILL: the node dies without closing anything, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.exit.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET path` on the HTTP listener; the response body (HTTP/1.0, so the server closes).
    pub async fn http_get(&self, path: &str) -> String {
        self.http("GET", path, None, None)
            .await
            .expect("http listener answers")
            .1
    }

    /// `method path` on the HTTP listener, with `Authorization: Bearer <bearer>` and a JSON
    /// `body` when given: the status and the response body, or the error when the listener
    /// does not answer (closed, as during shutdown). HTTP/1.0, so the server closes.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let response = self.http_response(method, path, bearer, body).await?;
        Ok((response.status, response.body))
    }

    /// [`Broker::http`] with the response head too; the path is sent as given (no client
    /// normalises it).
    pub async fn http_response(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<HttpResponse> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.http_addr).await?;
        let mut request = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
        if let Some(token) = bearer {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        tokio::time::timeout(crate::WAIT, stream.read_to_string(&mut response))
            .await
            .map_err(|_| std::io::Error::other("no HTTP response in time"))??;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        Ok(HttpResponse {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }

    /// Sends SIGTERM, the graceful-shutdown signal.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill(1) can be run");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit, up to `within`; `None` if it is still running then.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.exit {
                return Some(status);
            }
            if let Some(status) = self.child.try_wait().expect("child can be polled") {
                self.exit = Some(status);
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit status if the process ended within `within`.
    pub async fn stop_gracefully(&mut self, within: Duration) -> Option<ExitStatus> {
        self.sigterm();
        self.wait_exit(within).await
    }

    /// The broker's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

fn parse_ready_line(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut words = line.split_whitespace();
    if words.next()? != "stompbox" || words.next()? != "ready" {
        return None;
    }
    let (mut stomp, mut http) = (None, None);
    for word in words {
        if let Some(addr) = word.strip_prefix("stomp=") {
            stomp = addr.parse().ok();
        } else if let Some(addr) = word.strip_prefix("http=") {
            http = addr.parse().ok();
        }
    }
    Some((stomp?, http?))
}

/// The address after `prefix` in the ready line (the TLS listeners are listed only when set).
fn ready_line_field(line: &str, prefix: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(prefix))
        .and_then(|addr| addr.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_gives_both_addresses() {
        let (stomp, http) =
            parse_ready_line("stompbox ready stomp=127.0.0.1:4000 http=127.0.0.1:4001")
                .expect("parses");
        assert_eq!(stomp.port(), 4000);
        assert_eq!(http.port(), 4001);
        assert!(parse_ready_line("listening on 127.0.0.1:4000").is_none());
        let tls = "stompbox ready stomp=127.0.0.1:4000 http=127.0.0.1:4001 \
                   stomp_tls=127.0.0.1:4002 https=127.0.0.1:4003";
        assert!(parse_ready_line(tls).is_some());
        assert_eq!(
            ready_line_field(tls, "stomp_tls=").map(|a| a.port()),
            Some(4002)
        );
        assert_eq!(
            ready_line_field(tls, "https=").map(|a| a.port()),
            Some(4003)
        );
    }
}
