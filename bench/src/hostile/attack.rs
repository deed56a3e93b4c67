//! The attacks, each a loop of raw-socket connections from the attacker's address until the
//! run stops. None of them waits politely: they write as fast as the broker reads, and count
//! how the broker answered (an ERROR frame, a close, an HTTP status, or nothing).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Args;

/// What one attack saw over the run.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    /// Connections opened (TCP handshake done).
    pub connections: u64,
    /// Connections on which the broker sent an ERROR frame (or an HTTP error status).
    pub refused_with_error: u64,
    /// Connections the broker closed.
    pub closed_by_broker: u64,
    /// Connections that reached CONNECTED (the flood: how many the broker let in at once).
    pub admitted: u64,
    /// Bytes the attack wrote.
    pub bytes_sent: u64,
    /// Longest a connection of this attack stayed open, in seconds.
    pub longest_open_s: f64,
    /// Connects that failed at the TCP level.
    pub connect_failures: u64,
}

/// Counters shared by an attack's workers.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    refused_with_error: AtomicU64,
    closed_by_broker: AtomicU64,
    admitted: AtomicU64,
    bytes_sent: AtomicU64,
    longest_open_ms: AtomicU64,
    connect_failures: AtomicU64,
}

impl Counters {
    fn tally(&self) -> Tally {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            connections: get(&self.connections),
            refused_with_error: get(&self.refused_with_error),
            closed_by_broker: get(&self.closed_by_broker),
            admitted: get(&self.admitted),
            bytes_sent: get(&self.bytes_sent),
            longest_open_s: get(&self.longest_open_ms) as f64 / 1000.0,
            connect_failures: get(&self.connect_failures),
        }
    }

    fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn record(&self, seen: &Seen, opened: Instant) {
        self.add(&self.refused_with_error, u64::from(seen.error));
        self.add(&self.closed_by_broker, u64::from(seen.closed));
        self.add(&self.admitted, u64::from(seen.connected));
        self.add(&self.bytes_sent, seen.bytes_sent);
        self.longest_open_ms
            .fetch_max(opened.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// What the broker did on one connection.
#[derive(Debug, Default)]
struct Seen {
    error: bool,
    closed: bool,
    connected: bool,
    bytes_sent: u64,
}

impl Seen {
    fn read(&mut self, bytes: &[u8]) {
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        self.error |= has(b"ERROR\n") || has(b"HTTP/1.1 4") || has(b"HTTP/1.1 5");
        self.connected |= has(b"CONNECTED\n");
    }
}

type Attack = (&'static str, JoinHandle<Tally>);

/// Starts every attack; each stops when `stop` is cancelled and returns its tally.
pub fn spawn_all(args: &Args, stop: CancellationToken) -> Vec<Attack> {
    let mut attacks = Vec::new();
    let stomp = args.stomp;
    let http = args.http;
    let src = args.attacker;
    let login = connect_frame(&args.login, &args.passcode);
    let oversized = [
        login.clone(),
        b"SEND\ndestination:/queue/hostile\ncontent-length:1073741824\n\n".to_vec(),
    ]
    .concat();
    let header_flood = [
        login.clone(),
        b"SEND\ndestination:/queue/hostile\n".to_vec(),
    ]
    .concat();
    let upgrade = ws_upgrade(http);
    // A masked binary WebSocket frame claiming 1 GiB (RFC 6455 5.2: 127 = 64-bit length).
    let ws_oversized = [
        upgrade.clone(),
        vec![0x82, 0xFF],
        (1u64 << 30).to_be_bytes().to_vec(),
        vec![1, 2, 3, 4],
    ]
    .concat();
    let streams: [(&'static str, SocketAddr, Vec<u8>, Filler); 4] = [
        ("oversized_frame", stomp, oversized, Filler::Body),
        ("header_flood", stomp, header_flood, Filler::Headers),
        ("malformed", stomp, Vec::new(), Filler::Garbage),
        ("ws_oversized_message", http, ws_oversized, Filler::Body),
    ];
    for (name, addr, prefix, filler) in streams {
        let counters = Arc::new(Counters::default());
        let workers: Vec<_> = (0..args.workers)
            .map(|_| {
                let (counters, prefix, stop) = (counters.clone(), prefix.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.is_cancelled() {
                        stream_once(addr, src, &prefix, filler, &counters, &stop).await;
                    }
                })
            })
            .collect();
        attacks.push((name, tokio::spawn(finish(workers, counters))));
    }
    let counters = Arc::new(Counters::default());
    let workers = (0..args.slowloris)
        .map(|_| {
            let (counters, stop) = (counters.clone(), stop.clone());
            let login = login.clone();
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    slowloris_once(stomp, src, &login, &counters, &stop).await;
                }
            })
        })
        .collect();
    attacks.push(("slowloris", tokio::spawn(finish(workers, counters))));
    attacks.push((
        "connection_flood",
        tokio::spawn(flood(stomp, src, args.flood, login, stop)),
    ));
    attacks
}

async fn finish(workers: Vec<JoinHandle<()>>, counters: Arc<Counters>) -> Tally {
    for worker in workers {
        let _ = worker.await;
    }
    counters.tally()
}

fn connect_frame(login: &str, passcode: &str) -> Vec<u8> {
    format!("CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\npasscode:{passcode}\n\n\0")
        .into_bytes()
}

fn ws_upgrade(http: SocketAddr) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    )
    .into_bytes()
}

async fn open(addr: SocketAddr, source: Ipv4Addr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    socket.connect(addr).await
}

/// What follows the prefix, written until the broker closes the connection.
#[derive(Debug, Clone, Copy)]
enum Filler {
    /// Body bytes of a frame that claimed more than any limit.
    Body,
    /// One more header line, forever.
    Headers,
    /// Bytes that are no STOMP frame (binary noise, bad commands, bad headers).
    Garbage,
}

impl Filler {
    fn chunk(self, i: u64) -> Vec<u8> {
        match self {
            Filler::Body => vec![b'x'; 64 * 1024],
            Filler::Headers => (0..512)
                .flat_map(|j| format!("h{i}-{j}:{}\n", "v".repeat(64)).into_bytes())
                .collect(),
            Filler::Garbage => match i % 4 {
                0 => b"FROBNICATE\n\n\0".to_vec(),
                1 => b"CONNECT\naccept-version:9.9\n\n\0".to_vec(),
                2 => b"SEND\nno colon here\n\n\0".to_vec(),
                _ => (0..4096u32)
                    .map(|k| (k.wrapping_mul(2_654_435_761) >> 24) as u8)
                    .collect(),
            },
        }
    }
}

/// One connection: the prefix, then filler until the broker closes it (or 10 s, or stop).
async fn stream_once(
    addr: SocketAddr,
    source: Ipv4Addr,
    prefix: &[u8],
    filler: Filler,
    counters: &Counters,
    stop: &CancellationToken,
) {
    let stream = match open(addr, source).await {
        Ok(stream) => stream,
        Err(_) => {
            counters.add(&counters.connect_failures, 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    };
    counters.add(&counters.connections, 1);
    let opened = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    seen.closed = true;
                    return seen;
                }
                Ok(n) => seen.read(&buf[..n]),
            }
        }
    });
    let mut sent = 0u64;
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    let mut i = 0;
    let mut next = prefix.to_vec();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = &mut deadline => break,
            written = write.write_all(&next) => {
                if written.is_err() { break; }
                sent += next.len() as u64;
                i += 1;
                next = filler.chunk(i);
            }
        }
    }
    drop(write);
    let mut seen = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    seen.bytes_sent = sent;
    counters.record(&seen, opened);
}

/// One connection writing its CONNECT one byte a second; how long until the broker gives up.
async fn slowloris_once(
    addr: SocketAddr,
    source: Ipv4Addr,
    connect: &[u8],
    counters: &Counters,
    stop: &CancellationToken,
) {
    let Ok(mut stream) = open(addr, source).await else {
        counters.add(&counters.connect_failures, 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    };
    counters.add(&counters.connections, 1);
    let opened = Instant::now();
    let mut seen = Seen::default();
    let mut buf = [0u8; 1024];
    // Never the final NUL: the frame is never complete.
    for &byte in connect[..connect.len() - 1].iter().cycle() {
        tokio::select! {
            _ = stop.cancelled() => break,
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => { seen.closed = true; break; }
                Ok(n) => seen.read(&buf[..n]),
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(&[byte]).await.is_err() { seen.closed = true; break; }
                seen.bytes_sent += 1;
            }
        }
    }
    counters.record(&seen, opened);
}

/// Opens up to `target` connections that each CONNECT properly and then sit there, as fast as
/// the broker takes them, and holds them until the run stops.
async fn flood(
    addr: SocketAddr,
    source: Ipv4Addr,
    target: usize,
    connect: Vec<u8>,
    stop: CancellationToken,
) -> Tally {
    let counters = Arc::new(Counters::default());
    let at_once = Arc::new(Semaphore::new(256));
    let mut held = Vec::new();
    for _ in 0..target {
        if stop.is_cancelled() {
            break;
        }
        let Ok(permit) = at_once.clone().acquire_owned().await else {
            break;
        };
        let (counters, connect, stop) = (counters.clone(), connect.clone(), stop.clone());
        held.push(tokio::spawn(async move {
            let Ok(mut stream) = open(addr, source).await else {
                counters.add(&counters.connect_failures, 1);
                return;
            };
            counters.add(&counters.connections, 1);
            let opened = Instant::now();
            let mut seen = Seen::default();
            if stream.write_all(&connect).await.is_ok() {
                seen.bytes_sent = connect.len() as u64;
            }
            let mut buf = [0u8; 1024];
            let mut permit = Some(permit);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => { seen.closed = true; break; }
                        Ok(n) => {
                            seen.read(&buf[..n]);
                            // Answered: the next connection may start.
                            permit.take();
                        }
                    },
                }
            }
            counters.record(&seen, opened);
        }));
    }
    for handle in held {
        let _ = handle.await;
    }
    counters.tally()
}

/// Every attack's tally by name.
pub type Tallies = BTreeMap<&'static str, Tally>;
