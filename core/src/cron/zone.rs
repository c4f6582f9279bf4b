//! Time zones for cron: wall-clock times to instants and back, with the IANA database
//! compiled into the binary (jiff's bundled tzdb), so the core reads no file.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use super::calendar::Civil;
use super::CronError;

/// An IANA time zone (`UTC`, `Europe/Berlin`, `America/New_York`).
#[derive(Debug, Clone)]
pub struct CronZone {
    tz: TimeZone,
}

/// What a wall-clock time is in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    /// It happens once.
    Single(Timestamp),
    /// The clock went back over it: it happens twice.
    Fold {
        earlier: Timestamp,
        later: Timestamp,
    },
    /// The clock jumped over it: it never happens. `transition` is the first instant after
    /// the jump, whose wall-clock time is `resumes`.
    Gap {
        transition: Timestamp,
        resumes: Civil,
    },
}

impl CronZone {
    /// Looks a zone up by its IANA name.
    pub fn get(name: &str) -> Result<Self, CronError> {
        TimeZone::get(name)
            .map(|tz| Self { tz })
            .map_err(|_| CronError::UnknownZone(name.to_owned()))
    }

    pub fn utc() -> Self {
        Self { tz: TimeZone::UTC }
    }

    /// The wall-clock time at `t`, to the second (rounded down).
    pub(super) fn civil(&self, t: Timestamp) -> Civil {
        from_jiff(self.tz.to_offset(t).to_datetime(t))
    }

    /// When wall-clock time `c` happens; `None` past the calendar's range (year 9999).
    pub(super) fn resolve(&self, c: Civil) -> Option<Resolved> {
        let dt = to_jiff(c)?;
        Some(match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                Resolved::Single(offset.to_timestamp(dt).ok()?)
            }
            AmbiguousOffset::Fold { before, after } => Resolved::Fold {
                earlier: before.to_timestamp(dt).ok()?,
                later: after.to_timestamp(dt).ok()?,
            },
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the later offset, the time lies before the jump; the next
                // transition from there is the jump itself.
                let lower = after.to_timestamp(dt).ok()?;
                let jump = self.tz.following(lower).next()?;
                let transition = jump.timestamp();
                Resolved::Gap {
                    transition,
                    resumes: from_jiff(jump.offset().to_datetime(transition)),
                }
            }
        })
    }

    /// When `t` lies in the first pass over wall-clock times the clock then goes back over:
    /// the instant the second pass starts.
    pub(super) fn second_pass_after(&self, t: Timestamp) -> Option<Timestamp> {
        let offset = self.tz.to_offset(t);
        let dt = offset.to_datetime(t);
        match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Fold { before, .. } if before == offset => {
                Some(self.tz.following(t).next()?.timestamp())
            }
            _ => None,
        }
    }
}

fn from_jiff(dt: DateTime) -> Civil {
    Civil {
        year: i32::from(dt.year()),
        month: dt.month() as u32,
        day: dt.day() as u32,
        hour: dt.hour() as u32,
        minute: dt.minute() as u32,
        second: dt.second() as u32,
    }
}

fn to_jiff(c: Civil) -> Option<DateTime> {
    DateTime::new(
        i16::try_from(c.year).ok()?,
        c.month as i8,
        c.day as i8,
        c.hour as i8,
        c.minute as i8,
        c.second as i8,
        0,
    )
    .ok()
}
