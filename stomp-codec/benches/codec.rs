//! Decode and encode throughput: a small SEND-sized frame, a frame with a 1 KiB body, and a
//! buffer of many frames back to back. Reported as frames/s (elements) and bytes/s.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stomp_codec::{Command, Frame, Item, StompCodec, Version, encode_frame};
use tokio_util::codec::Decoder;

/// Frames in the back-to-back buffer: enough to amortise per-iteration setup.
const BATCH: usize = 1000;

/// A ~100-byte MESSAGE like the broker sends for a short text message.
fn small_frame() -> Frame {
    Frame::new(Command::Message)
        .header("destination", "/queue/orders")
        .header("message-id", "m-000123")
        .header("subscription", "sub-1")
        .header("content-type", "text/plain")
        .header("ack", "a-42")
        .with_body(Bytes::from_static(b"hello"))
}

fn kib_frame() -> Frame {
    Frame::new(Command::Send)
        .header("destination", "/queue/orders")
        .header("content-type", "application/octet-stream")
        .header("receipt", "r-7")
        .with_body(Bytes::from(vec![b'x'; 1024]))
}

fn wire(frame: &Frame, copies: usize) -> BytesMut {
    let mut dst = BytesMut::new();
    for _ in 0..copies {
        encode_frame(frame, Version::V1_2, &mut dst);
    }
    dst
}

fn decode_all(codec: &mut StompCodec, mut buf: BytesMut) -> usize {
    let mut frames = 0;
    while let Ok(Some(item)) = codec.decode(&mut buf) {
        if let Item::Frame(frame) = item {
            black_box(&frame);
            frames += 1;
        }
    }
    frames
}

fn bench(c: &mut Criterion) {
    for (name, frame) in [("small", small_frame()), ("1KiB_body", kib_frame())] {
        let one = wire(&frame, 1);
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("frames", |b| {
            let mut codec = StompCodec::default();
            b.iter(|| decode_all(&mut codec, one.clone()))
        });
        group.throughput(Throughput::Bytes(one.len() as u64));
        group.bench_function("bytes", |b| {
            let mut codec = StompCodec::default();
            b.iter(|| decode_all(&mut codec, one.clone()))
        });
        group.finish();

        let mut group = c.benchmark_group(format!("encode/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("frames", |b| {
            let mut dst = BytesMut::with_capacity(4096);
            b.iter(|| {
                dst.clear();
                encode_frame(black_box(&frame), Version::V1_2, &mut dst);
            })
        });
        group.throughput(Throughput::Bytes(one.len() as u64));
        group.bench_function("bytes", |b| {
            let mut dst = BytesMut::with_capacity(4096);
            b.iter(|| {
                dst.clear();
                encode_frame(black_box(&frame), Version::V1_2, &mut dst);
            })
        });
        group.finish();

        let many = wire(&frame, BATCH);
        let mut group = c.benchmark_group(format!("decode_back_to_back/{name}"));
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("frames", |b| {
            let mut codec = StompCodec::default();
            b.iter(|| assert_eq!(decode_all(&mut codec, many.clone()), BATCH))
        });
        group.throughput(Throughput::Bytes(many.len() as u64));
        group.bench_function("bytes", |b| {
            let mut codec = StompCodec::default();
            b.iter(|| assert_eq!(decode_all(&mut codec, many.clone()), BATCH))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
