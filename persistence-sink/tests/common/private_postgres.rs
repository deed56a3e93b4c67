//! A PostgreSQL cluster of the test's own (initdb in a temporary directory, a free port of
//! 127.0.0.1), which the test may stop and start: the shared cluster of
//! `scripts/services.sh` is never stopped. As root the server runs as the `postgres` OS user
//! (it refuses root).
//!
//! Settings: `fsync=off` as in scripts/services.sh (the OS page cache survives a killed
//! server; only a machine crash would need fsync), but `synchronous_commit=on`, unlike
//! services.sh: with it off, a commit returns before its WAL is written, and an immediate stop
//! loses the last ~0.6 s of commits — whose Kafka offsets the sink had already committed. The
//! outage test run with it off lost 20 messages and 1,050 receipt changes that way.
//! Dropping the handle stops the server immediately and removes the directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's PostgreSQL 15 lives (`STOMPBOX_PG_BIN` overrides, as for services.sh).
fn pg_bin(tool: &str) -> PathBuf {
    let dir = std::env::var_os("STOMPBOX_PG_BIN").map_or_else(
        || PathBuf::from("/usr/lib/postgresql/15/bin"),
        PathBuf::from,
    );
    dir.join(tool)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root.
fn pg_tool(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let bin = pg_bin(tool);
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&bin)
            .args(args)
            .output()?
    } else {
        Command::new(&bin).args(args).output()?
    };
    anyhow::ensure!(
        output.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    running: bool,
}

impl PrivatePostgres {
    /// `None` (after saying why) when the PostgreSQL binaries are not installed.
    pub fn init(test: &str) -> anyhow::Result<Option<Self>> {
        if !pg_bin("initdb").exists() {
            eprintln!("SKIPPED {test}: no {}", pg_bin("initdb").display());
            return Ok(None);
        }
        let dir = tempfile::Builder::new().prefix("stompbox-pg-").tempdir()?;
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()?;
            anyhow::ensure!(status.success(), "chown postgres {}", dir.path().display());
        }
        let data = data_dir(dir.path());
        pg_tool(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "stompbox",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut pg = PrivatePostgres {
            dir,
            port,
            running: false,
        };
        pg.start()?;
        Ok(Some(pg))
    }

    pub fn url(&self) -> String {
        format!("postgres://stompbox@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on its port (again, after [`PrivatePostgres::stop_immediate`]).
    pub fn start(&mut self) -> anyhow::Result<()> {
        let data = data_dir(self.dir.path());
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=on \
             -c full_page_writes=off",
            self.port,
            path_str(self.dir.path())?
        );
        pg_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// `pg_ctl stop -m immediate`: every backend is killed, no checkpoint (crash recovery at
    /// the next start).
    pub fn stop_immediate(&mut self) -> anyhow::Result<()> {
        let data = data_dir(self.dir.path());
        pg_tool(
            "pg_ctl",
            &["-D", path_str(&data)?, "-m", "immediate", "-w", "stop"],
        )?;
        self.running = false;
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop_immediate();
        }
    }
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path {}", path.display()))
}
