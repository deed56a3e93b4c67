//! The `stompbox-sink` binary as a child process, for the tests that kill it, stop its
//! database under it, or check that SIGTERM ends it cleanly. Its stderr (the log) goes to a
//! file the test can read; a child still running when the handle drops is killed (SIGKILL).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_store::kafka::KafkaConfig;

/// Start-up bound: connect, migrate, create topics (a loaded CI machine is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct SinkProcess {
    child: Child,
    log: PathBuf,
}

/// `url` with `search_path` set to `schema`, the way a libpq URL carries server options.
pub fn url_in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

impl SinkProcess {
    /// Starts the sink and waits for its ready line. `extra` flags are appended.
    pub fn start(
        kafka: &KafkaConfig,
        postgres_url: &str,
        group_id: &str,
        log: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_stompbox-sink"))
            .args([
                "--kafka-brokers",
                &kafka.brokers,
                "--postgres-url",
                postgres_url,
                "--group-id",
                group_id,
                "--events-topic",
                &kafka.events_topic,
                "--dead-letter-topic",
                &kafka.dead_letter_topic,
                "--partitions",
                &kafka.partitions.to_string(),
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("STOMPBOX_SINK_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut sink = SinkProcess {
            child,
            log: log.to_owned(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(line) if line == "stompbox-sink ready" => return Ok(sink),
                Ok(_) => {}
                Err(_) => {
                    let _ = sink.child.kill();
                    anyhow::bail!(
                        "stompbox-sink not ready in {READY_TIMEOUT:?}:\n{}",
                        sink.log()
                    );
                }
            }
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill_9(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!(
            "stompbox-sink still running {within:?} after SIGTERM:\n{}",
            self.log()
        )
    }

    /// SIGTERM must end the sink cleanly (exit status 0) within a few seconds.
    pub fn stop_gracefully(&mut self) -> anyhow::Result<()> {
        let status = self.terminate(Duration::from_secs(10))?;
        anyhow::ensure!(
            status.success(),
            "exit after SIGTERM: {status:?}\n{}",
            self.log()
        );
        Ok(())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
