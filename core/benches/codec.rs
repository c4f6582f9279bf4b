//! Codec throughput: worker-channel chunks (64 B and 4 KiB) through framing, and native opens.
//!
//! Each iteration handles a batch of messages, as a busy connection does per read.

use std::hint::black_box;

use bytes::BytesMut;
use cocaine_core::codec::native::{self, Auth, NativeMessage, Policy};
use cocaine_core::codec::worker::{self, WorkerMessage};
use cocaine_core::codec::FrameDecoder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BATCH: u64 = 256;
const MAX_MESSAGE: usize = 64 << 20;

fn worker_chunks(c: &mut Criterion) {
    for size in [64usize, 4096] {
        let data = vec![0x5a; size];
        let mut stream = BytesMut::new();
        for sid in 0..BATCH {
            worker::encode_chunk(&mut stream, sid, &data);
        }
        let stream = stream.freeze();

        let mut group = c.benchmark_group(format!("worker_chunk_{size}B"));
        group.throughput(Throughput::Elements(BATCH));
        let mut out = BytesMut::with_capacity(stream.len());
        group.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                for sid in 0..BATCH {
                    worker::encode_chunk(&mut out, sid, black_box(&data));
                }
                black_box(out.len())
            })
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let mut decoder = FrameDecoder::new(MAX_MESSAGE);
                decoder.push(black_box(&stream));
                let mut n = 0;
                while let Ok(Some(frame)) = decoder.next_frame() {
                    if let Ok(WorkerMessage::Chunk { data, .. }) =
                        WorkerMessage::decode_bytes(&frame)
                    {
                        n += data.len();
                    }
                }
                black_box(n)
            })
        });
        group.bench_function("encode_decode", |b| {
            let mut decoder = FrameDecoder::new(MAX_MESSAGE);
            b.iter(|| {
                out.clear();
                for sid in 0..BATCH {
                    worker::encode_chunk(&mut out, sid, black_box(&data));
                }
                decoder.push(&out);
                let mut n = 0;
                while let Ok(Some(frame)) = decoder.next_frame() {
                    if let Ok(WorkerMessage::Chunk { data, .. }) =
                        WorkerMessage::decode_bytes(&frame)
                    {
                        n += data.len();
                    }
                }
                black_box(n)
            })
        });
        group.finish();
    }
}

fn native_opens(c: &mut Criterion) {
    let policy = Policy {
        urgent: false,
        timeout_ms: Some(30_000),
        deadline_ms: Some(60_000),
        hop: 0,
        sealed: false,
    };
    let auth = Auth {
        user: "alice".into(),
        ts: 1_700_000_000_000,
        nonce: vec![7; 16].into(),
        app: Some("echo".into()),
        body: Some(vec![3; 32].into()),
        sig: vec![9; 256].into(),
    };
    for (name, auth) in [("native_open", None), ("native_open_signed", Some(&auth))] {
        let frames: Vec<_> = (0..BATCH)
            .map(|sid| native::encode_open(sid, "echo", &policy, auth))
            .collect();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(BATCH));
        group.bench_function("encode", |b| {
            b.iter(|| {
                for sid in 0..BATCH {
                    black_box(native::encode_open(sid, black_box("echo"), &policy, auth));
                }
            })
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                for frame in &frames {
                    let _ = black_box(NativeMessage::decode(black_box(frame), MAX_MESSAGE));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, worker_chunks, native_opens);
criterion_main!(benches);
