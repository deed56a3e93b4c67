//! `push-testbed`: runs the local FCM / APNs / Web Push stand-ins until killed, after
//! writing the JSON description a test reads (see the library docs).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use push_testbed::{Options, Testbed};

#[derive(Debug, Parser)]
#[command(about = "Local FCM, APNs and Web Push services for the push tests")]
struct Args {
    /// Directory for the generated keys (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Where to write the JSON description once listening (default: DIR/testbed.json).
    #[arg(long)]
    info: Option<PathBuf>,
    /// Lifetime in seconds of the FCM access tokens it grants.
    #[arg(long, default_value_t = 3600)]
    access_token_ttl: u64,
    /// Web Push subscriptions to make at start.
    #[arg(long, default_value_t = 4)]
    webpush_subscriptions: usize,
    /// The bundle id APNs expects as apns-topic.
    #[arg(long, default_value = "chat.stompbox.testbed")]
    apns_topic: String,
    /// HTTPS port (0: any free one).
    #[arg(long, default_value_t = 0)]
    https_port: u16,
    /// Plain-HTTP port (0: any free one).
    #[arg(long, default_value_t = 0)]
    http_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let info_path = args.info.unwrap_or_else(|| args.dir.join("testbed.json"));
    let options = Options {
        access_token_ttl: Duration::from_secs(args.access_token_ttl),
        webpush_subscriptions: args.webpush_subscriptions,
        apns_topic: args.apns_topic,
        https_port: args.https_port,
        http_port: args.http_port,
        ..Options::new(&args.dir)
    };
    let testbed = Testbed::start(options).await?;
    testbed.write_info(&info_path)?;
    println!("push-testbed ready: {}", info_path.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(testbed);
    Ok(())
}
