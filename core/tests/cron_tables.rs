//! Hand-checked next fire times: DST changes in Berlin and New York, month ends, leap days,
//! the day-of-month / day-of-week rule.

use cocaine_core::cron::{CronSchedule, CronZone};

fn ms(rfc3339: &str) -> u64 {
    let t: jiff::Timestamp = rfc3339.parse().unwrap();
    t.as_millisecond() as u64
}

fn utc(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .unwrap()
        .to_string()
}

/// The next `n` fires of `schedule` in `zone` after `from`, each from the previous one.
fn fires(schedule: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
    let s = CronSchedule::parse(schedule).unwrap();
    let z = CronZone::get(zone).unwrap();
    let mut at = ms(from);
    let mut out = Vec::new();
    for _ in 0..n {
        at = s.next_after(at, &z).unwrap();
        out.push(utc(at));
    }
    out
}

#[test]
fn berlin_spring_forward_2026() {
    // 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST; 02:xx never happens.
    // A fixed-time 02:30 fires at the first instant after the jump, 03:00 CEST.
    assert_eq!(
        fires("30 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    );
    assert_eq!(
        fires("0 0 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
        [
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:00:00Z",
            "2026-03-31T00:00:00Z"
        ]
    );
    // Other schedules skip the missing times.
    assert_eq!(
        fires("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:45:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]
    );
    assert_eq!(
        fires("0 2,3 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 2),
        ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]
    );
}

#[test]
fn berlin_fall_back_2026() {
    // 2026-10-25: 03:00 CEST (01:00Z) goes back to 02:00 CET; 02:xx happens twice.
    // A fixed-time 02:30 fires once, the first time.
    assert_eq!(
        fires("30 2 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", 2),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // Other schedules fire on both passes: every half hour stays every half hour.
    assert_eq!(
        fires("*/30 2 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", 5),
        [
            "2026-10-25T00:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:30:00Z",
            "2026-10-26T01:00:00Z"
        ]
    );
    assert_eq!(
        fires("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
        [
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z"
        ]
    );
}

#[test]
fn new_york_2026() {
    // 2026-03-08: 02:00 EST (07:00Z) jumps to 03:00 EDT.
    assert_eq!(
        fires("30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
    );
    // 2026-11-01: 02:00 EDT (06:00Z) goes back to 01:00 EST; 01:xx happens twice.
    assert_eq!(
        fires("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z", 2),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    assert_eq!(
        fires(
            "0 */20 1 * * *",
            "America/New_York",
            "2026-11-01T04:59:59Z",
            7
        ),
        [
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:20:00Z",
            "2026-11-01T05:40:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:20:00Z",
            "2026-11-01T06:40:00Z",
            "2026-11-02T06:00:00Z"
        ]
    );
    // Far from any change, New York is UTC-5 in winter.
    assert_eq!(
        fires(
            "0 9 * * mon-fri",
            "America/New_York",
            "2026-01-02T15:00:00Z",
            2
        ),
        ["2026-01-05T14:00:00Z", "2026-01-06T14:00:00Z"]
    );
}

#[test]
fn month_ends_and_leap_days() {
    assert_eq!(
        fires("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", 4),
        [
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
            "2026-08-31T00:00:00Z"
        ]
    );
    assert_eq!(
        fires("0 12 29 feb *", "UTC", "2025-01-01T00:00:00Z", 2),
        ["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"]
    );
    // 2100 is no leap year.
    assert_eq!(
        fires("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1),
        ["2104-02-29T00:00:00Z"]
    );
    assert_eq!(
        fires("59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", 1),
        ["2027-12-31T23:59:00Z"]
    );
    // The last second of a month rolls into the next.
    assert_eq!(
        fires("* * * * * *", "UTC", "2026-02-28T23:59:59Z", 1),
        ["2026-03-01T00:00:00Z"]
    );
}

#[test]
fn day_of_month_or_day_of_week() {
    // Both restricted: either matches. Feb 2026 has no 30th, but it has Mondays.
    assert_eq!(
        fires("0 0 30 2 mon", "UTC", "2026-02-01T00:00:00Z", 5),
        [
            "2026-02-02T00:00:00Z",
            "2026-02-09T00:00:00Z",
            "2026-02-16T00:00:00Z",
            "2026-02-23T00:00:00Z",
            "2027-02-01T00:00:00Z"
        ]
    );
    // June 2026: Mondays are the 1st, 8th, 15th, 22nd, 29th.
    assert_eq!(
        fires("0 0 1-31/2 6 mon", "UTC", "2026-05-31T00:00:00Z", 5),
        [
            "2026-06-01T00:00:00Z",
            "2026-06-03T00:00:00Z",
            "2026-06-05T00:00:00Z",
            "2026-06-07T00:00:00Z",
            "2026-06-08T00:00:00Z"
        ]
    );
    // A day field starting with * makes both needed (Vixie): odd days that are Mondays.
    assert_eq!(
        fires("0 0 */2 6 mon", "UTC", "2026-05-31T00:00:00Z", 3),
        [
            "2026-06-01T00:00:00Z",
            "2026-06-15T00:00:00Z",
            "2026-06-29T00:00:00Z"
        ]
    );
    // 7 is Sunday too.
    assert_eq!(
        fires("0 0 * * 7", "UTC", "2026-03-25T00:00:00Z", 1),
        ["2026-03-29T00:00:00Z"]
    );
}

#[test]
fn strictly_after_and_on_whole_seconds() {
    let s = CronSchedule::parse("* * * * * *").unwrap();
    let utc = CronZone::utc();
    assert_eq!(
        s.next_after(1_700_000_000_123, &utc),
        Some(1_700_000_001_000)
    );
    assert_eq!(
        s.next_after(1_700_000_000_000, &utc),
        Some(1_700_000_001_000)
    );
    let s = CronSchedule::parse("*/5 * * * * *").unwrap();
    assert_eq!(
        s.next_after(1_700_000_000_000, &utc),
        Some(1_700_000_005_000)
    );
    // Nothing fires past the calendar's end.
    let s = CronSchedule::parse("0 0 1 1 *").unwrap();
    assert_eq!(s.next_after(ms("9999-06-01T00:00:00Z"), &utc), None);
}
