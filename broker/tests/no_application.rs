//! The STOMP core with no application installed is a plain STOMP broker: `/app/...` is an
//! unknown destination, and the chat's rules (its conversation rooms) do not apply.

use std::sync::Arc;
use std::time::Duration;

use chat_store::SqliteStore;
use stompbox::admission::Admission;
use stompbox::broker::Broker;
use stompbox::config::Config;
use stompbox::session;
use stompbox::transport::Transport;
use stompbox::transport::tcp::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound on every wait: a missing frame fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(5);

/// A broker without an application, serving STOMP on a loopback port.
async fn plain_broker() -> std::net::SocketAddr {
    let store = Arc::new(SqliteStore::open_in_memory().expect("in-memory store"));
    let mut broker = Broker::with_store(Config::default(), store, None).expect("broker");
    broker.app = None;
    let broker = Arc::new(broker);
    let admission = Admission::new(&broker.config.limits, &broker.config.admission);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let permit = admission.admit(peer.ip()).expect("admitted");
            let transport = Transport::Tcp(TcpTransport::new(stream));
            tokio::spawn(session::serve(transport, Arc::clone(&broker), permit));
        }
    });
    addr
}

struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr, login: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client = Client {
            stream,
            buffer: Vec::new(),
        };
        client
            .send(&format!(
                "CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{login}\n\n"
            ))
            .await;
        assert!(client.frame().await.starts_with("CONNECTED\n"));
        client
    }

    /// Writes `frame` (command, headers, blank line, body) and its NUL.
    async fn send(&mut self, frame: &str) {
        self.stream
            .write_all(format!("{frame}\0").as_bytes())
            .await
            .expect("write");
    }

    /// The next frame, without its NUL.
    async fn frame(&mut self) -> String {
        loop {
            // Heart-beat EOLs between frames.
            let start = self
                .buffer
                .iter()
                .position(|b| *b != b'\n' && *b != b'\r')
                .unwrap_or(self.buffer.len());
            self.buffer.drain(..start);
            if let Some(end) = self.buffer.iter().position(|b| *b == 0) {
                let frame = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..=end);
                return frame;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
                .expect("read");
            assert!(n > 0, "connection closed while waiting for a frame");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

#[tokio::test]
async fn an_app_send_without_an_application_is_an_unknown_destination() {
    let addr = plain_broker().await;
    let mut ann = Client::connect(addr, "ann").await;
    ann.send("SEND\ndestination:/app/chat.send\nreceipt:r-1\ncontent-type:application/json\n\n{}")
        .await;
    let error = ann.frame().await;
    assert!(error.starts_with("ERROR\n"), "{error}");
    assert!(error.contains("\nmessage:unknown destination\n"), "{error}");
    assert!(error.contains("\nreceipt-id:r-1\n"), "{error}");
}

#[tokio::test]
async fn a_conversation_topic_is_an_ordinary_topic_without_the_chat() {
    let addr = plain_broker().await;
    let mut ann = Client::connect(addr, "ann").await;
    ann.send("SUBSCRIBE\nid:0\ndestination:/topic/conversation.g:1\nreceipt:r-sub\n\n")
        .await;
    assert!(ann.frame().await.starts_with("RECEIPT\n"));
    let mut bob = Client::connect(addr, "bob").await;
    bob.send("SEND\ndestination:/topic/conversation.g:1\nreceipt:r-send\n\nhello")
        .await;
    assert!(bob.frame().await.starts_with("RECEIPT\n"));
    let message = ann.frame().await;
    assert!(message.starts_with("MESSAGE\n"), "{message}");
    assert!(message.ends_with("\n\nhello"), "{message}");
}
