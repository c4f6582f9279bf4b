//! Every integration test of cocaine-core in one test binary (`cargo test -p cocaine-core
//! --test integration [FILTER]`, a filter such as `node_cluster::`): one link of the core and
//! its dependencies instead of one per file, and the shared harnesses in `support/` compiled
//! once. Each `tests/NAME.rs` is a module here; a new test file needs its `mod NAME;` line
//! below (kept sorted), or its own `[[test]]` in core/Cargo.toml when it must have a process
//! of its own (as `engine_memory`, whose counting global allocator would count the other
//! tests' allocations). `every_test_file_runs` fails when a file is in neither.
//!
//! The support modules are declared here once; a test file uses them with
//! `use crate::harness;` (support/node.rs), `use crate::native_auth;` or `use crate::corpus;`.

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/node.rs"]
mod harness;
#[path = "support/native_auth.rs"]
mod native_auth;

mod auth_fuzz_corpus;
mod auth_session;
mod auth_verify;
mod balance_props;
mod balance_sim;
mod cluster_announcement;
mod cluster_budget;
mod cluster_fuzz_corpus;
mod cluster_peers;
mod cluster_registry_props;
mod codec_http_wire;
mod codec_native;
mod codec_worker;
mod control_request;
mod cron_props;
mod cron_tables;
mod engine_failing;
mod engine_first_worker;
mod engine_http;
mod engine_job_timeout;
mod engine_props;
mod engine_rules;
mod etcd_fuzz_corpus;
mod fuzz_corpus;
mod http_body;
mod http_config;
mod http_conn;
mod manifest_errors;
mod manifest_examples;
mod manifest_props;
mod manifest_valid;
mod node_auth;
mod node_cluster;
mod node_cluster_auth;
mod node_control;
mod node_cron;
mod node_first_worker;
mod node_fs_monitor;
mod node_fuzz_corpus;
mod node_http_server;
mod node_lifecycle;
mod node_many_apps;
mod node_metrics;
mod node_native_auth;
mod node_native_seal;
mod node_native_server;
mod node_operate;
mod node_raw_server;
mod node_redeploy;
mod node_replication;
mod node_resolve;
mod node_session;
mod node_sinks;
mod node_spawn_env;
mod node_spillover;
mod node_timers;
mod node_tombstone_budget;
mod node_zmq_server;
mod replication_fuzz_corpus;
mod zmtp;

/// A file in core/tests that is neither a module here nor a test target of its own would
/// never run: `cargo test` would pass without it.
#[test]
fn every_test_file_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = root.join("tests");
    let main = std::fs::read_to_string(tests.join("main.rs")).unwrap();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&tests).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        if name == "main.rs"
            || main.lines().any(|l| l.trim() == format!("mod {stem};"))
            || cargo.contains(&format!("path = \"tests/{name}\""))
        {
            continue;
        }
        missing.push(name.to_string());
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "core/tests/{{{}}} would never run: add `mod NAME;` to core/tests/main.rs \
         (or a [[test]] with `path = \"tests/NAME.rs\"` to core/Cargo.toml)",
        missing.join(",")
    );
}
