//! Log lines to stderr, with a level filter. The core decides what to say; this decides
//! what to show and how: one line per event, stamped with the local time (RFC 3339), as text
//! for people or as JSON lines for programs.

use std::io::Write;

use clap::ValueEnum;
use cocaine_core::process::LogLevel;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// Parses `--log-level`.
pub fn parse_level(s: &str) -> Result<LogLevel, String> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Ok(LogLevel::Error),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        other => Err(format!(
            "unknown log level {other:?}; use error, warn, info or debug"
        )),
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `2026-12-02T05:01:02.345+01:00 INFO  message`.
    Text,
    /// `{"time":"2026-12-02T05:01:02.345+01:00","level":"info","message":"..."}`.
    Json,
}

#[derive(Debug, Clone)]
pub struct Logger {
    pub max: LogLevel,
    pub format: LogFormat,
    /// The system's zone, read once: every line of a run uses the same one.
    pub zone: TimeZone,
}

impl Logger {
    pub fn new(max: LogLevel, format: LogFormat) -> Self {
        Self {
            max,
            format,
            // TZ, else /etc/localtime; UTC when neither says anything.
            zone: TimeZone::try_system().unwrap_or(TimeZone::UTC),
        }
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        if level > self.max {
            return;
        }
        let line = self.line(Timestamp::now(), level, message);
        // One write per line, so lines from a busy node do not interleave mid-way.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// The line for one event, newline included. A message holding newlines stays one line:
    /// text escapes them, JSON encodes them.
    fn line(&self, at: Timestamp, level: LogLevel, message: &str) -> String {
        let time = rfc3339(&at.to_zoned_datetime(self.zone.clone()));
        match self.format {
            LogFormat::Text => {
                let name = match level {
                    LogLevel::Error => "ERROR",
                    LogLevel::Warn => "WARN ",
                    LogLevel::Info => "INFO ",
                    LogLevel::Debug => "DEBUG",
                };
                let message = message.replace('\n', "\\n");
                format!("{time} {name} {message}\n")
            }
            LogFormat::Json => {
                let value = serde_json::json!({
                    "time": time,
                    "level": level_name(level),
                    "message": message,
                });
                format!("{value}\n")
            }
        }
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    }
}

/// `2026-12-02T05:01:02.345+01:00`: milliseconds and the zone's offset.
fn rfc3339(at: &ZonedDateTime) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger(format: LogFormat, zone: &str) -> Logger {
        Logger {
            max: LogLevel::Debug,
            format,
            zone: TimeZone::get(zone).unwrap(),
        }
    }

    #[test]
    fn text_lines_carry_local_rfc3339_time() {
        let at: Timestamp = "2026-12-02T04:05:06.789Z".parse().unwrap();
        let paris = logger(LogFormat::Text, "Europe/Paris");
        assert_eq!(
            paris.line(at, LogLevel::Info, "node is up"),
            "2026-12-02T05:05:06.789+01:00 INFO  node is up\n"
        );
        let utc = logger(LogFormat::Text, "UTC");
        assert_eq!(
            utc.line(at, LogLevel::Error, "two\nlines"),
            "2026-12-02T04:05:06.789+00:00 ERROR two\\nlines\n"
        );
    }

    #[test]
    fn json_lines_parse_back() {
        let at: Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
        let line = logger(LogFormat::Json, "America/New_York").line(
            at,
            LogLevel::Warn,
            "a \"quoted\"\nmessage",
        );
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "time": "2026-06-30T20:00:00.000-04:00",
                "level": "warn",
                "message": "a \"quoted\"\nmessage",
            })
        );
    }
}
