//! Runs a manifest through the core with simulated workers and simulated time, printing
//! every output the node produces: what a runtime would bind, spawn, send and publish.
//!
//! `cargo run -p cocaine-core --example simulate -- manifests/example-2012.json [SECONDS]`

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use cocaine_core::codec::frame::FrameDecoder;
use cocaine_core::codec::worker::{self as wire, WorkerMessage};
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{Input, Node, NodeConfig, Output};
use cocaine_core::Now;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: simulate MANIFEST.json [SECONDS]");
        std::process::exit(2);
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(130);
    let path = Path::new(&path);
    let json = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", path.display());
        std::process::exit(1);
    });
    let app = path.file_stem().and_then(|s| s.to_str()).unwrap_or("app");
    let manifest = Manifest::parse(app, &json, path.parent()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });

    let start = Now::new(Instant::now(), SystemTime::now());
    let mut now = start;
    let mut node = Node::new(NodeConfig {
        hostname: "sim".into(),
        ..NodeConfig::default()
    });
    let mut decoders = std::collections::HashMap::new();
    let mut inputs = vec![Input::Deploy {
        manifest: Box::new(manifest),
        origin: cocaine_core::node::AppOrigin::CommandLine,
    }];
    let end = start.mono + Duration::from_secs(seconds);
    loop {
        for input in inputs.drain(..) {
            node.handle_input(now, input);
        }
        while let Some(output) = node.poll_output() {
            let at = now.mono.duration_since(start.mono).as_secs_f64();
            println!("[{at:8.3}s] {}", describe(&output));
            // Play the runtime and the workers.
            match output {
                Output::Bind { endpoint, .. } => inputs.push(Input::Bound {
                    endpoint,
                    result: Ok(()),
                }),
                Output::Spawn(spec) => {
                    let mut hello = BytesMut::new();
                    wire::encode_handshake(&mut hello, &spec.worker.to_string(), 1, 4242);
                    decoders.insert(spec.worker, FrameDecoder::new(usize::MAX));
                    inputs.push(Input::WorkerData {
                        worker: spec.worker,
                        bytes: hello.freeze(),
                    });
                }
                Output::ToWorker { worker, bytes } => {
                    let Some(decoder) = decoders.get_mut(&worker) else {
                        continue;
                    };
                    decoder.push(&bytes);
                    while let Ok(Some(frame)) = decoder.next_frame() {
                        let message = WorkerMessage::decode(&frame);
                        if let Ok(WorkerMessage::Heartbeat) = message {
                            let mut beat = BytesMut::new();
                            wire::encode_heartbeat(&mut beat);
                            inputs.push(Input::WorkerData {
                                worker,
                                bytes: beat.freeze(),
                            });
                        }
                        if let Ok(WorkerMessage::Invoke { sid, event, .. }) = message {
                            let mut reply = BytesMut::new();
                            let body = format!("{{\"event\": \"{event}\", \"answered\": true}}");
                            wire::encode_chunk(&mut reply, sid, body.as_bytes());
                            wire::encode_choke(&mut reply, sid);
                            inputs.push(Input::WorkerData {
                                worker,
                                bytes: reply.freeze(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if !inputs.is_empty() {
            continue;
        }
        match node.poll_timeout() {
            Some(at) if at <= end => {
                now = now + at.saturating_duration_since(now.mono);
                inputs.push(Input::Tick);
            }
            _ => break,
        }
    }
}

fn describe(output: &Output) -> String {
    match output {
        Output::Publish { topic, value, .. } => {
            let mut value = String::from_utf8_lossy(value).into_owned();
            if value.len() > 120 {
                value.truncate(
                    value
                        .char_indices()
                        .nth(117)
                        .map_or(value.len(), |(i, _)| i),
                );
                value.push_str("...");
            }
            format!("publish {} = {value}", String::from_utf8_lossy(topic))
        }
        Output::ToWorker { worker, bytes } => format!("to {worker}: {} bytes", bytes.len()),
        Output::Spawn(spec) => format!("spawn {}: {}", spec.worker, spec.argv.join(" ")),
        other => format!("{other:?}"),
    }
}
