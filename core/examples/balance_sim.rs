//! Prints the balancing simulation's table (docs/cluster.md): p50 and p99 queueing delay of
//! round-robin, random and power-of-two choices on load, for 100 and 1,000 simulated nodes,
//! one in five four times slower, with announced load up to one announcement interval (1 s)
//! old, for a mean service time of 10 ms (load a hundred services old) and of 250 ms (four).
//!
//! `cargo run -p cocaine-core --release --example balance_sim [-- SEED [NODES...]]`

use cocaine_core::cluster::simulation::{self, SimConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut sizes: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100, 1000];
    }
    let mut configs = Vec::new();
    for nodes in sizes {
        for mean_service_ms in [10.0, 250.0] {
            // The same number of services per node in each run, whatever their length.
            configs.push(SimConfig {
                seed,
                mean_service_ms,
                duration_ms: 1000.0 * mean_service_ms,
                warmup_ms: 200.0 * mean_service_ms,
                ..SimConfig::table(nodes)
            });
        }
    }
    print!("{}", simulation::table(&configs));
}
