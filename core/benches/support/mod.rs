//! What the benchmarks that end with a summary share.

use std::time::Duration;

use criterion::Criterion;

/// Runs `benches` under criterion (configured from the command line), then `summary` with a
/// 500 ms measuring round, but only when benchmarking for real: criterion's other modes
/// (`cargo test --benches`, `--list`, `--profile-time`) skip the summary.
pub fn run_with_summary(benches: fn(&mut Criterion), summary: fn(Duration)) {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let benchmarking = has("--bench")
        && !has("--test")
        && !has("--list")
        && !args.iter().any(|a| a.starts_with("--profile-time"));
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    if benchmarking {
        summary(Duration::from_millis(500));
    }
}
