//! One field of a cron schedule: a list of values, ranges and steps, as a bit set.

use super::CronError;

/// Which field of a schedule, with what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Field {
    /// The field's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day of month",
            Field::Month => "month",
            Field::DayOfWeek => "day of week",
        }
    }

    /// The smallest and largest value written (7 is Sunday too in the day of week).
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    /// Three-letter names and the value of the first.
    fn names(self) -> Option<(&'static [&'static str], u32)> {
        match self {
            Field::Month => Some((&MONTHS, 1)),
            Field::DayOfWeek => Some((&WEEKDAYS, 0)),
            _ => None,
        }
    }
}

/// A parsed field: bit `v` is set when value `v` matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub bits: u64,
    /// Written starting with `*` or `?`. Vixie cron keys its day-of-month / day-of-week rule
    /// on this, so `*/2` counts as unrestricted there.
    pub star: bool,
    /// One plain value: no `*`, no step, no list or range of several values. Schedules whose
    /// second, minute and hour are all plain are "fixed-time" for the DST rules.
    pub plain: bool,
}

/// Parses `text` as `field`.
pub fn parse(field: Field, text: &str) -> Result<Parsed, CronError> {
    let bad = |reason: String| CronError::Field {
        field: field.name(),
        text: text.to_owned(),
        reason,
    };
    let (min, max) = field.bounds();
    let mut bits = 0u64;
    let mut plain = true;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(bad("an empty item in a list".to_owned()));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let step = match step {
            None => 1,
            Some(s) => {
                plain = false;
                match s.parse::<u32>() {
                    Ok(0) => return Err(bad("a step must be at least 1".to_owned())),
                    Ok(n) if n <= max => n,
                    Ok(n) => return Err(bad(format!("the step {n} is larger than {max}"))),
                    Err(_) => return Err(bad(format!("{s:?} is not a step (a number)"))),
                }
            }
        };
        let (lo, hi) = if range == "*" || range == "?" {
            if range == "?" && !matches!(field, Field::DayOfMonth | Field::DayOfWeek) {
                return Err(bad("? is only for the day of month or week".to_owned()));
            }
            plain = false;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(field, a).map_err(bad)?, value(field, b).map_err(bad)?);
            if a > b {
                return Err(bad(format!(
                    "the range {range} runs backwards (write it as a list of two ranges)"
                )));
            }
            (a, b)
        } else {
            let a = value(field, range).map_err(bad)?;
            // Cron dialects disagree on `5/15` (5 alone, or 5 to the end), so it is refused.
            if item.contains('/') {
                return Err(bad(format!(
                    "a step needs a range: write {range}-{max}/{step} or */{step}"
                )));
            }
            (a, a)
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    if field == Field::DayOfWeek && bits & (1 << 7) != 0 {
        bits = (bits & !(1 << 7)) | 1;
    }
    let star = text.starts_with('*') || text.starts_with('?');
    Ok(Parsed {
        bits,
        star,
        plain: plain && bits.count_ones() == 1,
    })
}

/// One value: a number in the field's bounds, or a name for months and days.
fn value(field: Field, text: &str) -> Result<u32, String> {
    let (min, max) = field.bounds();
    if let Ok(n) = text.parse::<u32>() {
        if text.starts_with('+') {
            return Err(format!("{text:?} is not a value"));
        }
        return if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is out of range ({min}-{max})"))
        };
    }
    if let Some((names, first)) = field.names() {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(first + i as u32);
        }
        return Err(format!(
            "{text:?} is not a number ({min}-{max}) nor a name ({}-{})",
            names[0].to_ascii_uppercase(),
            names[names.len() - 1].to_ascii_uppercase()
        ));
    }
    Err(format!("{text:?} is not a number ({min}-{max})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(field: Field, text: &str) -> Vec<u32> {
        let p = parse(field, text).unwrap();
        (0..64).filter(|v| p.bits & (1 << v) != 0).collect()
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        assert_eq!(bits(Field::Minute, "*/15"), vec![0, 15, 30, 45]);
        assert_eq!(bits(Field::Minute, "1-10/3,50"), vec![1, 4, 7, 10, 50]);
        assert_eq!(bits(Field::Month, "jan,MAR-May"), vec![1, 3, 4, 5]);
        assert_eq!(bits(Field::DayOfWeek, "5-7"), vec![0, 5, 6]);
        assert_eq!(bits(Field::DayOfWeek, "Mon-fri/2"), vec![1, 3, 5]);
        assert_eq!(bits(Field::DayOfMonth, "?"), (1..=31).collect::<Vec<_>>());
    }

    #[test]
    fn star_and_plain() {
        let p = parse(Field::DayOfMonth, "*/2").unwrap();
        assert!(p.star && !p.plain);
        let p = parse(Field::Hour, "7").unwrap();
        assert!(!p.star && p.plain);
        assert!(!parse(Field::Hour, "7,8").unwrap().plain);
        assert!(!parse(Field::Hour, "7-7/12").unwrap().plain);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = |f, t| parse(f, t).unwrap_err().to_string();
        assert!(msg(Field::Minute, "60").contains("out of range (0-59)"));
        assert!(msg(Field::Hour, "5-2").contains("runs backwards"));
        assert!(msg(Field::Second, "*/0").contains("at least 1"));
        assert!(msg(Field::Month, "foo").contains("nor a name (JAN-DEC)"));
        assert!(msg(Field::Minute, "1,,2").contains("empty item"));
        assert!(msg(Field::Minute, "?").contains("only for the day"));
        assert!(msg(Field::Minute, "mon").contains("not a number"));
        assert!(msg(Field::Minute, "+5").contains("not a value"));
        assert!(msg(Field::Minute, "5/15").contains("write 5-59/15 or */15"));
    }
}
