//! A private `redis-server` per test, for the cluster suite: no TCP port at all (a Unix
//! socket in a scratch directory, so parallel tests cannot collide), no persistence, killed
//! and removed on drop. It can be restarted at the same address to test outages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a starting redis-server has to answer PING: it takes milliseconds, but the
/// machine is shared with builds.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
}

impl Redis {
    pub fn start() -> Redis {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stompbox-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory can be created");
        let socket = dir.join("redis.sock");
        let mut redis = Redis {
            child: None,
            dir,
            socket,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&self.socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        println!(
            "redis-server pid {} at {}",
            child.id(),
            self.socket.display()
        );
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.try_cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL to give `--redis-url`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Runs a command with `redis-cli`, returning its output lines.
    pub fn cli(&self, args: &[&str]) -> Vec<String> {
        self.try_cli(args)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The channels some node is subscribed to (`PUBSUB CHANNELS`), sorted.
    pub fn channels(&self) -> Vec<String> {
        let mut channels = self.cli(&["PUBSUB", "CHANNELS", "sbx:*"]);
        channels.sort();
        channels
    }

    /// Kills the server (SIGKILL: an outage, not a clean stop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Stops the server without closing anything (SIGSTOP): connections stay up and every
    /// command waits, as with a Redis that stalls rather than refuses.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("kill can be run");
        assert!(status.success(), "kill {signal} redis-server");
    }

    /// Kills the server and starts an empty one at the same address.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
