//! Properties of the balancing choices (core/src/cluster/balance.rs): whatever the loads
//! and the random number, a choice never lands on a node that cannot take the request when
//! another can, p2c never picks the worse of the two it drew, and spillover forwards at most
//! once, to the least-loaded peer.

use cocaine_core::cluster::balance::{
    least_loaded, power_of_two, random_pick, spillover, Health, Load, RoundRobin, Spill,
    SpillRequest,
};
use proptest::prelude::*;

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        4 => Just(Health::Running),
        1 => Just(Health::Starting),
        1 => Just(Health::Unavailable),
    ]
}

prop_compose! {
    fn any_load()(
        queue in 0u64..20,
        busy in 0u64..10,
        pool_limit in 0u64..10,
        queue_limit in 0u64..20,
        health in health(),
    ) -> Load {
        Load { queue, busy, workers: busy, pool_limit, queue_limit, health }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn p2c_chooses_an_available_node_whenever_one_exists(
        loads in prop::collection::vec(any_load(), 0..12),
        random in any::<u64>(),
    ) {
        let chosen = power_of_two(&loads, Load::score, random);
        let any_available = loads.iter().any(|l| l.score().is_some());
        prop_assert_eq!(chosen.is_some(), any_available);
        if let Some(i) = chosen {
            prop_assert!(i < loads.len());
            prop_assert!(loads[i].score().is_some());
        }
    }

    #[test]
    fn p2c_is_a_pure_function_of_its_inputs(
        loads in prop::collection::vec(any_load(), 0..12),
        random in any::<u64>(),
    ) {
        prop_assert_eq!(
            power_of_two(&loads, Load::score, random),
            power_of_two(&loads, Load::score, random)
        );
    }

    #[test]
    fn p2c_never_beats_least_loaded_and_least_loaded_is_minimal(
        loads in prop::collection::vec(any_load(), 1..12),
        random in any::<u64>(),
    ) {
        if let Some(best) = least_loaded(&loads, Load::score) {
            let best_score = loads[best].score().unwrap();
            for l in &loads {
                if let Some(s) = l.score() {
                    prop_assert!(best_score <= s);
                }
            }
            let chosen = power_of_two(&loads, Load::score, random).unwrap();
            prop_assert!(best_score <= loads[chosen].score().unwrap());
        }
    }

    #[test]
    fn p2c_over_equal_loads_reaches_every_node(n in 2usize..9, seed in any::<u64>()) {
        let loads = vec![Load { pool_limit: 1, queue_limit: 1, ..Load::default() }; n];
        let mut hit = vec![false; n];
        let mut r = seed;
        for _ in 0..(n * 64) {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            hit[power_of_two(&loads, Load::score, r).unwrap()] = true;
        }
        prop_assert!(hit.iter().all(|h| *h));
    }

    #[test]
    fn baselines_stay_in_range(n in 0usize..50, random in any::<u64>(), turns in 0usize..100) {
        let mut rr = RoundRobin::default();
        for _ in 0..turns {
            prop_assert_eq!(rr.pick(n).is_some(), n > 0);
        }
        if let Some(i) = rr.pick(n) { prop_assert!(i < n); }
        if let Some(i) = random_pick(n, random) { prop_assert!(i < n); }
    }

    #[test]
    fn spillover_forwards_only_a_full_unforwarded_request_to_the_least_loaded(
        peers in prop::collection::vec(any_load(), 0..8),
        queue_full in any::<bool>(),
        on in any::<bool>(),
        forwarded in any::<bool>(),
    ) {
        let request = SpillRequest { queue_full, spillover: on, forwarded };
        match spillover(request, &peers) {
            Spill::Admit => prop_assert!(!queue_full),
            Spill::Forward(i) => {
                prop_assert!(queue_full && on && !forwarded);
                let chosen = peers[i].score().unwrap();
                prop_assert!(peers.iter().filter_map(Load::score).all(|s| chosen <= s));
            }
            Spill::Reject => prop_assert!(
                queue_full && (!on || forwarded || peers.iter().all(|p| p.score().is_none()))
            ),
        }
    }

    #[test]
    fn adjusted_keeps_the_total_and_the_limits(load in any_load(), delta in -30i64..30) {
        let after = load.adjusted(delta);
        let before = (load.queue + load.busy) as i64;
        prop_assert_eq!((after.queue + after.busy) as i64, (before + delta).max(0));
        prop_assert!(after.busy <= load.pool_limit.max(load.busy));
        prop_assert!(after.queue == 0 || after.busy == load.pool_limit.max(load.busy));
        prop_assert_eq!(after.pool_limit, load.pool_limit);
        prop_assert_eq!(after.health, load.health);
    }
}
