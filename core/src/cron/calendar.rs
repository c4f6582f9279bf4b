//! Wall-clock arithmetic on the proleptic Gregorian calendar, without time zones: the next
//! civil date-time at or after a given one that a schedule's fields match.

use super::CronSchedule;

/// A wall-clock time to the second, in no particular zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 0 for Sunday .. 6 for Saturday.
pub fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday.
    (days_from_civil(year, month, day) + 4).rem_euclid(7) as u32
}

/// The lowest set bit of `bits` at or above `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

impl Civil {
    /// The start of the next day.
    fn next_day(self) -> Civil {
        let (year, month, day) = if self.day < days_in_month(self.year, self.month) {
            (self.year, self.month, self.day + 1)
        } else if self.month < 12 {
            (self.year, self.month + 1, 1)
        } else {
            (self.year + 1, 1, 1)
        };
        Civil {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    /// One second later.
    pub fn plus_second(self) -> Civil {
        let mut c = self;
        c.second += 1;
        if c.second == 60 {
            c.second = 0;
            c.minute += 1;
            if c.minute == 60 {
                c.minute = 0;
                c.hour += 1;
                if c.hour == 24 {
                    return self.next_day();
                }
            }
        }
        c
    }
}

impl CronSchedule {
    /// Whether the date matches: month, then day of month and day of week, combined as Vixie
    /// cron does (either one when both are restricted, else both).
    pub(super) fn day_matches(&self, year: i32, month: u32, day: u32) -> bool {
        if self.months & (1 << month) == 0 {
            return false;
        }
        let dom = self.days & (1 << day) != 0;
        let dow = self.weekdays & (1 << weekday(year, month, day)) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first civil time at or after `from` that the fields match, searching no later
    /// than the end of year `until`.
    pub(super) fn next_civil(&self, from: Civil, until: i32) -> Option<Civil> {
        let mut c = from;
        while c.year <= until {
            if self.months & (1 << c.month) == 0 {
                c = next_month(c);
                continue;
            }
            if !self.day_matches(c.year, c.month, c.day) {
                c = c.next_day();
                continue;
            }
            let Some(hour) = next_bit(self.hours, c.hour) else {
                c = c.next_day();
                continue;
            };
            if hour != c.hour {
                c = Civil {
                    hour,
                    minute: 0,
                    second: 0,
                    ..c
                };
            }
            let Some(minute) = next_bit(self.minutes, c.minute) else {
                c = next_hour(c);
                continue;
            };
            if minute != c.minute {
                c = Civil {
                    minute,
                    second: 0,
                    ..c
                };
            }
            let Some(second) = next_bit(self.seconds, c.second) else {
                c = next_minute(c);
                continue;
            };
            return Some(Civil { second, ..c });
        }
        None
    }
}

fn next_month(c: Civil) -> Civil {
    let (year, month) = if c.month == 12 {
        (c.year + 1, 1)
    } else {
        (c.year, c.month + 1)
    };
    Civil {
        year,
        month,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    }
}

fn next_hour(c: Civil) -> Civil {
    if c.hour == 23 {
        return c.next_day();
    }
    Civil {
        hour: c.hour + 1,
        minute: 0,
        second: 0,
        ..c
    }
}

fn next_minute(c: Civil) -> Civil {
    if c.minute == 59 {
        return next_hour(c);
    }
    Civil {
        minute: c.minute + 1,
        second: 0,
        ..c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_and_leap_years() {
        assert_eq!(weekday(1970, 1, 1), 4);
        assert_eq!(weekday(2026, 3, 29), 0);
        assert_eq!(weekday(2000, 2, 29), 2);
        assert_eq!(weekday(1900, 3, 1), 4);
        assert!(is_leap(2000) && !is_leap(2100) && is_leap(2096));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
    }

    #[test]
    fn seconds_roll_over_into_the_next_year() {
        let c = Civil {
            year: 2025,
            month: 12,
            day: 31,
            hour: 23,
            minute: 59,
            second: 59,
        };
        assert_eq!(
            c.plus_second(),
            Civil {
                year: 2026,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
    }
}
