//! Log lines to stderr, with a level filter. The core decides what to say; this decides
//! what to show.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use cocaine_core::process::LogLevel;

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

#[derive(Debug, Clone, Copy)]
pub struct Logger {
    pub max: LogLevel,
}

impl Logger {
    pub fn log(&self, level: LogLevel, message: &str) {
        if level > self.max {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let name = match level {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN ",
            LogLevel::Info => "INFO ",
            LogLevel::Debug => "DEBUG",
        };
        let mut err = std::io::stderr().lock();
        // One write per line, so lines from a busy node do not interleave mid-way.
        let line = format!(
            "{}.{:03} {name} {message}\n",
            now.as_secs(),
            now.subsec_millis()
        );
        let _ = err.write_all(line.as_bytes());
    }
}
