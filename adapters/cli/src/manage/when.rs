//! `cocaine schedule`'s times: `--after 1h30m` durations, `--at` RFC 3339 times or unix
//! milliseconds, and unix milliseconds printed back as RFC 3339 (UTC).
//!
//! Small enough to write here rather than pull a date crate: the node only ever wants unix
//! milliseconds, and the CLI only needs the proleptic Gregorian calendar from 1970 on.

use std::time::Duration;

/// Parses a duration such as `500ms`, `10s`, `2m`, `1h`, `1h30m` or `1d`: one or more
/// whole numbers, each followed by a unit (`ms`, `s`, `m`, `h`, `d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("duration {text:?}: {why}; write e.g. 500ms, 10s, 2m, 1h30m");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if rest.starts_with('.') => return Err(bad("fractions are not supported")),
            "" => return Err(bad("a number needs a unit")),
            _ => return Err(bad("unknown unit")),
        };
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| bad("too long"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses `--at`: unix milliseconds (digits only), or an RFC 3339 time such as
/// `2026-11-25T18:00:00Z`, `2026-11-25T18:00:00.250+01:00` (a space may replace the `T`).
/// Digits beyond milliseconds are dropped. Returns unix milliseconds.
pub fn parse_time(text: &str) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("time {text:?}: number too large"));
    }
    rfc3339(text).map_err(|why| {
        format!(
            "time {text:?}: {why}; write an RFC 3339 time like 2026-11-25T18:00:00Z \
             (or +01:00 for an offset), or unix milliseconds"
        )
    })
}

fn rfc3339(text: &str) -> Result<u64, &'static str> {
    let b = text.as_bytes();
    // YYYY-MM-DDTHH:MM:SS is 19 bytes; a zone follows, at least `Z`.
    if b.len() < 20 {
        return Err("too short");
    }
    let num = |from: usize, len: usize| -> Result<i64, &'static str> {
        let part = &b[from..from + len];
        if part.iter().all(u8::is_ascii_digit) {
            Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
        } else {
            Err("expected digits")
        }
    };
    let sep = |at: usize, allowed: &[u8]| {
        if allowed.contains(&b[at]) {
            Ok(())
        } else {
            Err("unexpected separator")
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"Tt ")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let minute = num(14, 2)?;
    sep(16, b":")?;
    let second = num(17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    // Leap seconds (:60) are not accepted: nothing downstream counts them.
    if hour > 23 || minute > 59 || second > 59 {
        return Err("no such time of day");
    }
    let mut at = 19;
    let mut millis = 0;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err("expected digits after '.'");
        }
        for (i, d) in b[at + 1..at + 1 + digits].iter().take(3).enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1][i];
        }
        at += 1 + digits;
    }
    let offset_minutes = match &b[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return Err("no such offset");
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err("expected a zone: Z or +HH:MM"),
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    let ms = seconds * 1_000 + millis;
    u64::try_from(ms).map_err(|_| "before 1970")
}

/// Formats unix milliseconds as RFC 3339 in UTC: `2026-11-25T18:00:00Z`, with `.250` when
/// the milliseconds are not zero.
pub fn format_time(unix_ms: u64) -> String {
    let seconds = (unix_ms / 1_000) as i64;
    let millis = unix_ms % 1_000;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (of_day / 3_600, of_day % 3_600 / 60, of_day % 60);
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |text| parse_duration(text).map(|d| d.as_millis() as u64);
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("10s"), Ok(10_000));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("1d2h3m4s5ms"), Ok(93_784_005));
        assert_eq!(ms("0s"), Ok(0));
    }

    #[test]
    fn bad_durations_say_why() {
        for (text, why) in [
            ("", "empty"),
            ("10", "needs a unit"),
            ("1.5s", "fractions"),
            ("10x", "unknown unit"),
            ("10 s", "needs a unit"),
            ("s", "expected a number"),
            ("1h-5m", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("9999999999999999d", "too long"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.contains("1h30m"), "{text:?}: {err}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        // date -u -d 2026-11-25T18:00:00Z +%s
        assert_eq!(parse_time("2026-11-25T18:00:00Z"), Ok(1_795_629_600_000));
        assert_eq!(parse_time("2026-11-25t18:00:00z"), Ok(1_795_629_600_000));
        assert_eq!(parse_time("2026-11-25 18:00:00Z"), Ok(1_795_629_600_000));
        assert_eq!(
            parse_time("2026-11-25T19:30:00+01:30"),
            Ok(1_795_629_600_000)
        );
        assert_eq!(
            parse_time("2026-11-25T13:00:00-05:00"),
            Ok(1_795_629_600_000)
        );
        assert_eq!(parse_time("2026-11-25T18:00:00.25Z"), Ok(1_795_629_600_250));
        assert_eq!(
            parse_time("2026-11-25T18:00:00.123456789Z"),
            Ok(1_795_629_600_123)
        );
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(parse_time("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
    }

    #[test]
    fn bad_times_say_why() {
        for (text, why) in [
            ("", "too short"),
            ("tomorrow", "too short"),
            ("2026-11-25T18:00:00", "too short"),
            ("2026-11-25T18:00:00+0100", "expected a zone"),
            ("2026-11-25T18:00:00 UTC", "expected a zone"),
            ("2026/11/25T18:00:00Z", "separator"),
            ("2026-13-01T00:00:00Z", "no such date"),
            ("2025-02-29T00:00:00Z", "no such date"),
            ("2026-04-31T00:00:00Z", "no such date"),
            ("2026-11-25T24:00:00Z", "no such time"),
            ("2026-11-25T18:00:60Z", "no such time"),
            ("2026-11-25T18:00:00.Z", "digits after"),
            ("2026-11-25T18:00:00+24:00", "no such offset"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("1970-01-01T00:30:00+01:00", "before 1970"),
            ("2026-1a-25T18:00:00Z", "expected digits"),
        ] {
            let err = parse_time(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_795_629_600_000), "2026-11-25T18:00:00Z");
        assert_eq!(format_time(1_795_629_600_007), "2026-11-25T18:00:00.007Z");
        // Every day boundary over a few centuries, leap years and 2100 included.
        for days in (0..200_000).step_by(997) {
            let ms = days * 86_400_000 + 45_296_789;
            assert_eq!(parse_time(&format_time(ms)), Ok(ms), "{}", format_time(ms));
        }
    }
}
