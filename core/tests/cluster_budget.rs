//! Fitting an announcement into one datagram (`cluster::budget`): live apps always, tombstones
//! while they fit, in the order given, with room for the longest signature when signed. Never
//! an oversized datagram, whatever the number of apps and tombstones.

use std::collections::BTreeMap;

use bytes::Bytes;
use cocaine_core::cluster::announcement::{AppAnnouncement, AppState, Load, MAX_SIG};
use cocaine_core::cluster::budget::{fit, SIG_RESERVE};
use cocaine_core::cluster::{Announcement, MAX_ANNOUNCEMENT};
use proptest::prelude::*;

fn live(tasks: usize) -> AppAnnouncement {
    AppAnnouncement {
        version: u64::MAX,
        hash: "ab".repeat(32),
        tasks: (0..tasks)
            .map(|t| {
                (
                    format!("task-{t}"),
                    format!("tcp://127.0.0.200:{}", 10_000 + t),
                )
            })
            .collect(),
        load: Load {
            queue: u64::MAX,
            busy: 1,
            workers: 2,
            pool_limit: 3,
            queue_limit: u64::MAX,
        },
        state: AppState::Running,
    }
}

fn tombstone(version: u64) -> AppAnnouncement {
    AppAnnouncement {
        version,
        hash: String::new(),
        tasks: BTreeMap::new(),
        load: Load::default(),
        state: AppState::Deleted,
    }
}

fn base(apps: usize, name_len: usize) -> Announcement {
    Announcement {
        node_id: "n".repeat(64),
        seq: u64::MAX,
        control: format!("tcp://{}:5000", "h".repeat(200)),
        apps: (0..apps)
            .map(|i| (format!("{i:0>name_len$}"), live(3)))
            .collect(),
        sig: None,
    }
}

fn tombstones(count: usize, name_len: usize) -> Vec<(String, AppAnnouncement)> {
    (0..count)
        .map(|i| (format!("t{i:0>name_len$}"), tombstone(u64::MAX - i as u64)))
        .collect()
}

/// Encodes as the node does: unsigned, or with a signature of the longest length.
fn encode(mut a: Announcement, signed: bool) -> Bytes {
    if signed {
        a.sig = Some(Bytes::from(vec![0xee; MAX_SIG]));
    }
    a.encode().expect("fits one datagram")
}

#[test]
fn thousands_of_tombstones_fit_what_they_can_in_order_and_defer_the_rest() {
    for signed in [false, true] {
        let mut a = base(40, 40);
        let all = tombstones(5_000, 60);
        let reserve = if signed { SIG_RESERVE } else { 1 };
        let fitted = fit(&mut a, all.clone(), reserve);
        assert!(fitted.added > 100, "{fitted:?}");
        assert_eq!(fitted.added + fitted.deferred, 5_000);
        // The first ones, in the order given, went in; every live app is still there.
        let added: Vec<&String> = a
            .apps
            .iter()
            .filter(|(_, e)| e.state == AppState::Deleted)
            .map(|(n, _)| n)
            .collect();
        let expected: Vec<&String> = all.iter().take(fitted.added).map(|(n, _)| n).collect();
        assert_eq!(added, expected);
        assert_eq!(a.apps.len(), 40 + fitted.added);
        let bytes = encode(a, signed);
        assert!(bytes.len() <= MAX_ANNOUNCEMENT);
        // Not wasteful: one more tombstone would not have fitted.
        let one_more =
            cocaine_core::cluster::announcement::entry_len(&all[fitted.added].0, &all[0].1);
        assert!(
            bytes.len() + one_more + reserve > MAX_ANNOUNCEMENT - 5,
            "{}",
            bytes.len()
        );
    }
}

#[test]
fn a_live_app_is_never_replaced_by_its_tombstone() {
    let mut a = base(2, 4);
    let name = a.apps.keys().next().unwrap().clone();
    let fitted = fit(&mut a, vec![(name.clone(), tombstone(1))], 1);
    assert_eq!(fitted.added, 0);
    assert_eq!(a.apps[&name].state, AppState::Running);
}

#[test]
fn live_apps_that_fill_the_datagram_leave_no_room_and_it_still_never_overflows() {
    // About as many live apps as fit with the signature's room: at most a few tombstones go
    // in, the rest wait.
    let per_app = cocaine_core::cluster::announcement::entry_len("x".repeat(10).as_str(), &live(3));
    let apps = (MAX_ANNOUNCEMENT - 2_000) / per_app;
    let mut a = base(apps, 10);
    let fitted = fit(&mut a, tombstones(100, 60), SIG_RESERVE);
    assert!(fitted.added <= 10, "{fitted:?}");
    assert_eq!(fitted.added + fitted.deferred, 100);
    assert!(encode(a, true).len() <= MAX_ANNOUNCEMENT);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the counts and name lengths: once the live apps fit with the signature's room,
    /// the fitted announcement, signed with the longest signature, fits one datagram.
    #[test]
    fn fitted_announcements_never_outgrow_a_datagram(
        apps in 0usize..200,
        app_name in 1usize..64,
        count in 0usize..4_000,
        tomb_name in 1usize..64,
        signed in any::<bool>(),
    ) {
        let mut a = base(apps, app_name);
        let reserve = if signed { SIG_RESERVE } else { 1 };
        prop_assume!(a.signed_part().len() + reserve + 5 <= MAX_ANNOUNCEMENT);
        let fitted = fit(&mut a, tombstones(count, tomb_name), reserve);
        prop_assert_eq!(fitted.added + fitted.deferred, count);
        let bytes = encode(a, signed);
        prop_assert!(bytes.len() <= MAX_ANNOUNCEMENT);
        prop_assert!(Announcement::decode(&bytes).is_ok());
    }
}
