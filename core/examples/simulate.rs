//! Runs a manifest through the core with simulated workers and simulated time, printing
//! every output the node produces: what a runtime would bind, spawn, send and publish.
//!
//! `cargo run -p cocaine-core --example simulate -- manifests/example-2012.json [SECONDS]`

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{Input, Node, NodeConfig, Output};
use cocaine_core::sim::{self, Answer, Script, SimWorker};
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
    // Every worker handshakes, answers heartbeats, answers each job once its request ends,
    // and leaves when signalled.
    let script = Script {
        handshake: true,
        answer: Answer::Chunks(vec![Bytes::from_static(b"{\"answered\": true}")]),
        obey: true,
        heartbeat: true,
    };
    let mut workers = std::collections::HashMap::new();
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
                    let mut worker = SimWorker::new(spec.worker, script.clone());
                    let hello: Vec<_> = worker.greet().into_iter().collect();
                    workers.insert(spec.worker, worker);
                    inputs.push(Input::WorkerData {
                        worker: spec.worker,
                        bytes: sim::encode(&hello),
                    });
                }
                Output::ToWorker { worker, bytes } => {
                    let Some(w) = workers.get_mut(&worker) else {
                        continue;
                    };
                    if let Err(e) = w.receive(&bytes) {
                        println!("           {e}");
                        continue;
                    }
                    let mut replies: Vec<_> = w.beat().into_iter().collect();
                    replies.extend(w.answer());
                    if !replies.is_empty() {
                        inputs.push(Input::WorkerData {
                            worker,
                            bytes: sim::encode(&replies),
                        });
                    }
                }
                Output::Kill { worker, signal } => {
                    let Some(w) = workers.get_mut(&worker) else {
                        continue;
                    };
                    w.signal(signal);
                    if w.leaving() {
                        let status = w.exit();
                        inputs.push(Input::WorkerExited { worker, status });
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
