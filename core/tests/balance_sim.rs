//! The balancing simulation (core/src/cluster/simulation): a seed gives one run, requests
//! are conserved, and load-aware choice beats the blind baselines on skewed nodes. Checks its
//! behaviour on a small cluster, never its speed.

use cocaine_core::cluster::simulation::{run, SimConfig, Strategy};

fn small() -> SimConfig {
    SimConfig {
        nodes: 20,
        clients: 4,
        duration_ms: 3_000.0,
        warmup_ms: 500.0,
        ..SimConfig::table(20)
    }
}

#[test]
fn a_seed_gives_the_same_run() {
    for strategy in Strategy::ALL {
        assert_eq!(
            run(&small(), strategy),
            run(&small(), strategy),
            "{strategy:?}"
        );
    }
    let other = SimConfig { seed: 2, ..small() };
    assert_ne!(run(&small(), Strategy::P2c), run(&other, Strategy::P2c));
}

#[test]
fn every_request_is_admitted_or_rejected_and_every_admitted_one_finishes_or_stays() {
    for strategy in Strategy::ALL {
        let o = run(&small(), strategy);
        assert!(o.arrivals > 1000, "{strategy:?}: {o:?}");
        assert_eq!(o.arrivals, o.admitted + o.rejected, "{strategy:?}");
        assert_eq!(o.admitted, o.completed + o.in_system, "{strategy:?}");
        // A measured request has a delay once a worker takes it; only those still queued
        // at the end have none.
        assert!(o.delays_us.len() as u64 + o.measured_rejected <= o.measured);
        assert!(o.measured - o.measured_rejected - o.delays_us.len() as u64 <= o.in_system);
    }
}

#[test]
fn blind_baselines_overload_the_slow_nodes_and_load_aware_choice_does_not() {
    let config = small();
    let round_robin = run(&config, Strategy::RoundRobin);
    let random = run(&config, Strategy::Random);
    let own_first = run(&config, Strategy::P2cOwnFirst);
    // One node in five is four times slower: at 80% of the cluster's capacity, an equal
    // share is three times what a slow node can serve, so the blind baselines fill its queue.
    assert!(
        round_robin.rejected_share() > 0.05,
        "{}",
        round_robin.rejected_share()
    );
    assert!(
        random.rejected_share() > 0.05,
        "{}",
        random.rejected_share()
    );
    assert!(
        own_first.rejected_share() < 0.01,
        "{}",
        own_first.rejected_share()
    );
    assert!(own_first.delay_ms(99.0) * 2.0 < round_robin.delay_ms(99.0));
    assert!(own_first.delay_ms(99.0) * 2.0 < random.delay_ms(99.0));
}

#[test]
fn delays_are_sorted_and_percentiles_ordered() {
    let o = run(&small(), Strategy::P2c);
    assert!(o.delays_us.windows(2).all(|w| w[0] <= w[1]));
    assert!(o.delay_ms(50.0) <= o.delay_ms(99.0));
    assert!(o.delay_ms(99.0) <= o.delay_ms(100.0));
}
