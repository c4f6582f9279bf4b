//! Cron schedules: parsing them, and the next instant one fires in a time zone.
//!
//! Pure functions of their inputs: the caller passes the time (unix milliseconds) and the
//! zone; the zone database is compiled in. The `cron` task driver (`node/cron_tasks.rs`) and
//! the manifest's validation share this one parser.
//!
//! Syntax: 5 fields `min hour dom mon dow`, or 6 with seconds first. Each field is a list of
//! items separated by commas; an item is `*`, a value, a range `a-b`, each optionally with a
//! step (`*/5`, `1-10/2`; not `5/15`, which dialects read differently); months and days of week
//! also take three-letter English names in any case (`JAN`, `mon`); the day of week runs
//! 0-7 with both 0 and 7 for Sunday; `?` means `*` in the two day fields. When both day fields
//! are restricted, a day matches either (Vixie cron); when either starts with `*`, it must
//! match both.
//!
//! Time zones and daylight saving time (the rules of Vixie cron, and croner's):
//! - A *fixed-time* schedule has one plain value in each of second, minute and hour (like
//!   `30 2 * * *`). A time of it that a spring-forward jump skips fires at the first instant
//!   after the jump (02:30 skipped from 02:00 to 03:00 fires at 03:00). A time of it that a
//!   fall-back repeats fires once, the first time.
//! - Any other schedule (`*/15 * * * *`, `0 1,2 * * *`) fires at each instant whose wall
//!   clock matches: times in a skipped hour do not fire, times in a repeated hour fire on
//!   both passes.

mod calendar;
mod field;
mod zone;

use jiff::Timestamp;

use calendar::Civil;
use field::Field;
pub use zone::CronZone;
use zone::Resolved;

/// Why a schedule or a zone cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "a cron schedule has 5 fields (min hour dom mon dow) or 6 (sec min hour dom mon dow), \
         found {0}"
    )]
    FieldCount(usize),
    #[error("{field} field {text:?}: {reason}")]
    Field {
        field: &'static str,
        text: String,
        reason: String,
    },
    #[error("the schedule never fires: none of its months has a day it names")]
    NeverFires,
    #[error("unknown time zone {0:?}; expected an IANA name like UTC or Europe/Berlin")]
    UnknownZone(String),
}

/// A parsed schedule: one bit per value each field matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    /// Days of month, bits 1-31.
    days: u64,
    /// Months, bits 1-12.
    months: u64,
    /// Days of week, bit 0 Sunday .. 6 Saturday.
    weekdays: u64,
    dom_star: bool,
    dow_star: bool,
    /// See the module's DST rules.
    fixed_time: bool,
}

/// How many years ahead a search looks before it gives up. A schedule that can fire at all
/// fires within 28 years (Feb 29 on one weekday), so this is only a bound on the work.
const SEARCH_YEARS: i32 = 400;

impl CronSchedule {
    /// Parses a schedule of 5 or 6 fields.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let parts: Vec<&str> = match parts.len() {
            5 => std::iter::once("0").chain(parts).collect(),
            6 => parts,
            n => return Err(CronError::FieldCount(n)),
        };
        let sec = field::parse(Field::Second, parts[0])?;
        let min = field::parse(Field::Minute, parts[1])?;
        let hour = field::parse(Field::Hour, parts[2])?;
        let dom = field::parse(Field::DayOfMonth, parts[3])?;
        let mon = field::parse(Field::Month, parts[4])?;
        let dow = field::parse(Field::DayOfWeek, parts[5])?;
        let schedule = CronSchedule {
            seconds: sec.bits,
            minutes: min.bits,
            hours: hour.bits,
            days: dom.bits,
            months: mon.bits,
            weekdays: dow.bits,
            dom_star: dom.star,
            dow_star: dow.star,
            fixed_time: sec.plain && min.plain && hour.plain,
        };
        if !schedule.can_fire() {
            return Err(CronError::NeverFires);
        }
        Ok(schedule)
    }

    /// Whether some date matches. Every (month, day) pair falls on every weekday over the
    /// 400-year cycle, so only the days of month against the months' lengths can rule a
    /// schedule out, and only when both day fields must match.
    fn can_fire(&self) -> bool {
        if !(self.dom_star || self.dow_star) {
            return true;
        }
        (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| {
                let longest = if m == 2 {
                    29
                } else {
                    calendar::days_in_month(2001, m)
                };
                (1..=longest).any(|d| self.days & (1 << d) != 0)
            })
    }

    /// Whether the schedule is fixed-time (one plain second, minute and hour): see the
    /// module's DST rules.
    pub fn is_fixed_time(&self) -> bool {
        self.fixed_time
    }

    /// The first instant strictly after `unix_ms` at which the schedule fires in `zone`, in
    /// unix milliseconds (always a whole second); `None` if there is none before year 9999.
    pub fn next_after(&self, unix_ms: u64, zone: &CronZone) -> Option<u64> {
        let t = Timestamp::from_millisecond(i64::try_from(unix_ms).ok()?).ok()?;
        let mut best = self.walk(zone, zone.civil(t).plus_second(), t);
        // A walk over wall-clock times from the first pass of a repeated hour never sees the
        // second pass; it lies ahead too, for schedules that fire on both passes.
        if !self.fixed_time {
            if let Some(edge) = zone.second_pass_after(t) {
                let just_before = Timestamp::from_millisecond(edge.as_millisecond() - 1).ok()?;
                let other = self.walk(zone, zone.civil(edge), just_before);
                best = match (best, other) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        u64::try_from(best?.as_millisecond()).ok()
    }

    /// The first instant after `after` found by walking wall-clock times from `from`.
    fn walk(&self, zone: &CronZone, from: Civil, after: Timestamp) -> Option<Timestamp> {
        let until = from.year.saturating_add(SEARCH_YEARS);
        let mut c = from;
        loop {
            c = self.next_civil(c, until)?;
            match zone.resolve(c)? {
                Resolved::Single(t) if t > after => return Some(t),
                Resolved::Single(_) => c = c.plus_second(),
                Resolved::Fold { earlier, later } => {
                    if earlier > after {
                        return Some(earlier);
                    }
                    if !self.fixed_time && later > after {
                        return Some(later);
                    }
                    c = c.plus_second();
                }
                Resolved::Gap {
                    transition,
                    resumes,
                } => {
                    let date_ok = self.day_matches(resumes.year, resumes.month, resumes.day);
                    if self.fixed_time && date_ok && transition > after {
                        return Some(transition);
                    }
                    // Every wall-clock time before `resumes` is skipped.
                    c = resumes;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_counts() {
        assert_eq!(
            CronSchedule::parse("* * * *"),
            Err(CronError::FieldCount(4))
        );
        assert_eq!(
            CronSchedule::parse("* * * * * * *"),
            Err(CronError::FieldCount(7))
        );
        assert!(CronSchedule::parse(" * *\t* * * ").is_ok());
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert_eq!(
            CronSchedule::parse("0 0 30 2 *"),
            Err(CronError::NeverFires)
        );
        assert_eq!(
            CronSchedule::parse("0 0 31 4,6,9,11 *"),
            Err(CronError::NeverFires)
        );
        // Feb 29 exists; and with a weekday too, either day field may match.
        assert!(CronSchedule::parse("0 0 29 2 *").is_ok());
        assert!(CronSchedule::parse("0 0 30 2 mon").is_ok());
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(CronZone::get("Europe/Berlin").is_ok());
        assert!(CronZone::get("UTC").is_ok());
        assert_eq!(
            CronZone::get("Mars/Olympus").unwrap_err(),
            CronError::UnknownZone("Mars/Olympus".into())
        );
    }
}
