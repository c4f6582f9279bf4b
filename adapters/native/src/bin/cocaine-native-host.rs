//! `cocaine-native-host --socket PATH LIBRARY ARGS`: runs a native app library as a worker
//! process (`backend: process`). The node spawns it with the worker environment of
//! docs/protocol.md §1; `ARGS` is the manifest's `args` as written, given to `cocaine_create`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use cocaine_worker::Config;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (library, app_args) = match positional(&args) {
        Some(found) => found,
        None => {
            eprintln!("usage: cocaine-native-host [--socket PATH] LIBRARY [ARGS]");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_parts(args.iter().cloned(), |var| std::env::var_os(var)) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("cocaine-native-host: {err}");
            return ExitCode::from(2);
        }
    };
    match cocaine_native::serve(config, &library, &app_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cocaine-native-host: {err}");
            ExitCode::FAILURE
        }
    }
}

/// LIBRARY and ARGS: the arguments that are not `--socket` and its value.
fn positional(args: &[OsString]) -> Option<(PathBuf, String)> {
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--socket" {
            iter.next();
        } else if !arg.to_string_lossy().starts_with("--socket=") {
            rest.push(arg);
        }
    }
    let library = PathBuf::from(rest.first()?);
    let app_args = rest
        .get(1)
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some((library, app_args))
}
