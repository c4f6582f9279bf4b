//! The cron schedule agrees with croner (a well-known implementation, used here only) on
//! random schedules, zones and instants, including around DST transitions; and hand-checked
//! tables pin the DST rules and month ends.

use cocaine_core::cron::{CronError, CronSchedule, CronZone};
use proptest::prelude::*;

/// Zones with stable rules in the years tested: whole-hour, half-hour and 45-minute offsets,
/// DST north and south, a 30-minute DST shift (Lord Howe), and none.
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/St_Johns",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
];

/// Instants near DST transitions of the zones above (unix seconds), where the rules matter.
const NEAR: &[i64] = &[
    1_774_746_000, // 2026-03-29 01:00 UTC: Berlin and London spring forward
    1_792_890_000, // 2026-10-25 01:00 UTC: they fall back
    1_772_953_200, // 2026-03-08 07:00 UTC: New York springs forward
    1_793_512_800, // 2026-11-01 06:00 UTC: New York falls back
    1_775_318_400, // 2026-04-04 16:00 UTC: Sydney falls back
    1_791_043_200, // 2026-10-03 16:00 UTC: Sydney springs forward
    1_709_434_800, // 2024-03-03 03:00 UTC: Lord Howe (a 30-minute shift)
    1_727_535_600, // 2024-09-28 15:00 UTC
    1_699_164_000, // 2023-11-05 06:00 UTC: New York
];

/// What croner says: the next instant after `t` (unix seconds), or `None` on an error (it
/// gives up after a year of searching).
fn croner_next(text: &str, zone: &str, t: i64) -> Option<i64> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(text)
        .unwrap_or_else(|e| panic!("croner refuses {text:?}: {e}"));
    let tz = jiff02::tz::TimeZone::get(zone).unwrap();
    let start = jiff02::Timestamp::from_second(t).unwrap().to_zoned(tz);
    let next = cron.find_next_occurrence(&start, false).ok()?;
    Some(next.timestamp().as_second())
}

fn ours_next(schedule: &CronSchedule, zone: &CronZone, t: i64) -> Option<i64> {
    let ms = schedule.next_after(u64::try_from(t * 1000).unwrap(), zone)?;
    assert_eq!(ms % 1000, 0, "fires on whole seconds");
    Some(ms as i64 / 1000)
}

/// One item of a field whose values run `lo..=hi`: a value, a range, a step.
fn item(lo: u32, hi: u32, names: &'static [&'static str], first: u32) -> BoxedStrategy<String> {
    let value = (lo..=hi).prop_flat_map(move |v| {
        let name = names
            .get((v.wrapping_sub(first)) as usize)
            .map(|n| n.to_string());
        match name {
            Some(n) => {
                prop_oneof![Just(v.to_string()), Just(n.clone()), Just(n.to_lowercase())].boxed()
            }
            None => Just(v.to_string()).boxed(),
        }
    });
    let span = hi - lo;
    prop_oneof![
        3 => value.clone(),
        2 => (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        1 => (lo..=hi, lo..=hi, 1..=span.max(1)).prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b))),
    ]
    .boxed()
}

/// A whole field: `*`, `*/n`, or a list of items. `star_list` allows `*/n` (not in the day
/// fields, where Vixie and croner read `*/n` differently: see the tables below).
fn field(
    lo: u32,
    hi: u32,
    star_step: bool,
    names: &'static [&'static str],
    first: u32,
) -> BoxedStrategy<String> {
    let list = prop::collection::vec(item(lo, hi, names, first), 1..=3).prop_map(|v| v.join(","));
    let span = hi - lo;
    if star_step {
        prop_oneof![3 => Just("*".to_owned()), 1 => (1..=span).prop_map(|s| format!("*/{s}")), 3 => list].boxed()
    } else {
        prop_oneof![3 => Just("*".to_owned()), 1 => Just("?".to_owned()), 3 => list].boxed()
    }
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A schedule of 5 or 6 fields, biased towards firing often and towards the small hours
/// when DST changes happen, and towards fixed-time schedules.
fn schedule() -> impl Strategy<Value = String> {
    let sec =
        prop_oneof![2 => (0u32..60).prop_map(|v| v.to_string()), 1 => field(0, 59, true, &[], 0)];
    let min =
        prop_oneof![2 => (0u32..60).prop_map(|v| v.to_string()), 2 => field(0, 59, true, &[], 0)];
    let hour = prop_oneof![
        2 => (0u32..4).prop_map(|v| v.to_string()),
        1 => (0u32..24).prop_map(|v| v.to_string()),
        2 => field(0, 23, true, &[], 0),
        1 => field(0, 4, true, &[], 0),
    ];
    let dom = prop_oneof![3 => Just("*".to_owned()), 1 => field(1, 31, false, &[], 0)];
    let mon = prop_oneof![3 => Just("*".to_owned()), 1 => field(1, 12, true, MONTHS, 1)];
    let dow = prop_oneof![3 => Just("*".to_owned()), 1 => field(0, 7, false, DAYS, 0)];
    (any::<bool>(), sec, min, hour, dom, mon, dow).prop_map(|(six, s, m, h, d, mo, w)| {
        if six {
            format!("{s} {m} {h} {d} {mo} {w}")
        } else {
            format!("{m} {h} {d} {mo} {w}")
        }
    })
}

/// Unix seconds: anywhere in 2000-2035, or within two days of a DST transition.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => 946_684_800i64..2_082_758_400,
        2 => (prop::sample::select(NEAR), -172_800i64..172_800).prop_map(|(t, d)| t + d),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_croner(text in schedule(), zone in prop::sample::select(ZONES), t in instant()) {
        let ours = match CronSchedule::parse(&text) {
            Ok(s) => s,
            // A schedule that can never fire: croner has no such check and searches in vain.
            Err(CronError::NeverFires) => {
                prop_assert_eq!(croner_next(&text, zone, t), None);
                return Ok(());
            }
            Err(e) => panic!("{text:?} refused: {e}"),
        };
        let z = CronZone::get(zone).unwrap();
        // A chain of fires, each from the previous one, walks through folds and gaps.
        let mut at = t;
        for _ in 0..6 {
            let Some(theirs) = croner_next(&text, zone, at) else { break };
            let mine = ours_next(&ours, &z, at);
            prop_assert_eq!(mine, Some(theirs), "{:?} in {} after {}", text, zone, at);
            at = theirs;
        }
    }
}
