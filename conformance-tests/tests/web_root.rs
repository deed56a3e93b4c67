//! `--web-root DIR`: the HTTP listener serves DIR's files (index.html for `/`), never anything
//! outside DIR (`..`, encoded or not, and symbolic links leading out answer 404), and the
//! broker's own routes (`/ws`, `/health`) still come first. Without it, paths answer 404 as
//! before. A web root that is not a directory stops the broker at startup.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use conformance_tests::broker::binary;
use conformance_tests::{Broker, WsClient};

/// A web root holding an index page and a script, next to a secret file that is not in it,
/// plus a link inside it that leads to the secret.
fn site(name: &str) -> (PathBuf, PathBuf) {
    let base =
        std::env::temp_dir().join(format!("stompbox-web-root-{}-{name}", std::process::id()));
    let root = base.join("site");
    std::fs::create_dir_all(root.join("js")).expect("site directory");
    std::fs::write(root.join("index.html"), "<h1>chat</h1>").expect("index");
    std::fs::write(root.join("js/app.js"), "export const ok = 1;").expect("script");
    let secret = base.join("secret.txt");
    std::fs::write(&secret, "not for the web").expect("secret");
    let _ = std::fs::remove_file(root.join("leak.txt"));
    std::os::unix::fs::symlink(&secret, root.join("leak.txt")).expect("symlink");
    (root, base)
}

/// `GET path`: status code, head (lower-cased), body.
async fn get(broker: &Broker, path: &str) -> (u16, String, String) {
    let response = broker
        .http_response("GET", path, None, None)
        .await
        .expect("http listener answers");
    (
        response.status,
        response.head.to_ascii_lowercase(),
        response.body,
    )
}

fn web_root_args(root: &Path) -> Vec<String> {
    vec!["--web-root".to_owned(), root.display().to_string()]
}

#[tokio::test]
async fn files_under_the_web_root_are_served_index_html_for_directories() {
    let (root, _base) = site("serve");
    let args = web_root_args(&root);
    let broker = Broker::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, _, body) = get(&broker, "/").await;
    assert_eq!((status, body.as_str()), (200, "<h1>chat</h1>"));
    let (status, head, body) = get(&broker, "/js/app.js").await;
    assert_eq!((status, body.as_str()), (200, "export const ok = 1;"));
    // Browsers refuse to run an ES module served with a non-JavaScript type.
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(get(&broker, "/missing.html").await.0, 404);
}

#[tokio::test]
async fn nothing_outside_the_web_root_is_served() {
    let (root, _base) = site("outside");
    let args = web_root_args(&root);
    let broker = Broker::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for path in [
        "/../secret.txt",
        "/js/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/js/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/leak.txt",
    ] {
        let (status, _, body) = get(&broker, path).await;
        assert_ne!(status, 200, "{path} answered {status}");
        assert!(
            !body.contains("not for the web"),
            "{path} leaked the file outside the root"
        );
    }
}

#[tokio::test]
async fn broker_routes_come_before_the_web_root() {
    let (root, _base) = site("routes");
    std::fs::write(root.join("health"), "a file named health").expect("file");
    let args = web_root_args(&root);
    let broker = Broker::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, _, body) = get(&broker, "/health").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // A STOMP session over WebSocket at /ws, CONNECTED.
    let client = WsClient::connect(&broker.ws_url(), "web").await;
    assert_eq!(client.protocol.as_deref(), Some("v12.stomp"));
}

#[tokio::test]
async fn without_a_web_root_paths_answer_404() {
    let broker = Broker::start(&[]);
    assert_eq!(get(&broker, "/").await.0, 404);
    assert_eq!(get(&broker, "/index.html").await.0, 404);
}

#[tokio::test]
async fn a_web_root_that_is_not_a_directory_stops_the_broker() {
    let output = std::process::Command::new(binary())
        .args([
            "--stomp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--web-root", "/nonexistent/stompbox-web-root"])
        .stdin(Stdio::null())
        .output()
        .expect("broker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("web_root"), "{stderr}");
}
