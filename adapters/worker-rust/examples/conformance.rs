//! The conformance app for the Rust SDK: the events the worker conformance kit calls
//! (`adapters/conformance`, contract in docs/sdk.md).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cocaine_worker::{HandlerError, Worker};

fn number(request: &[u8]) -> Result<u64, HandlerError> {
    let text = std::str::from_utf8(request)?;
    Ok(text.trim().parse()?)
}

fn main() -> ExitCode {
    let worker = match Worker::from_env() {
        Ok(worker) => worker,
        Err(err) => {
            eprintln!("cocaine-conformance-worker: {err}");
            return ExitCode::from(2);
        }
    };
    let result = worker
        .on("echo", |request| Ok(vec![request]))
        .on("count", |request| {
            Ok((1..=number(&request)?)
                .map(|i| i.to_string().into_bytes())
                .collect())
        })
        .on_stream("stream", |request, mut response| {
            for chunk in request {
                response.write(&chunk)?;
            }
            Ok(())
        })
        .on("fail", |request| {
            Err(HandlerError::new(format!(
                "failed on {}",
                String::from_utf8_lossy(&request)
            )))
        })
        .on("code", |request| {
            let text = String::from_utf8_lossy(&request);
            let (code, message) = text.split_once(' ').unwrap_or((&text, ""));
            Err(HandlerError::with_code(code.parse()?, message))
        })
        .on_stream("slow", |request, mut response| {
            let ms = number(&request.flatten().collect::<Vec<u8>>())?;
            response.write(b"started")?;
            let deadline = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < deadline {
                if response.is_cancelled() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            response.write(b"done")?;
            Ok(())
        })
        .run();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cocaine-conformance-worker: {err}");
            ExitCode::FAILURE
        }
    }
}
