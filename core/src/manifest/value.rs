//! Typed views of one JSON value, each recording a problem at its key path when the value is
//! not what the key needs. They return `None` after a problem so the caller falls back to the
//! default and goes on looking for more problems.

use super::error::Problems;
use serde_json::Value;
use std::time::Duration;

/// A short, readable rendering of a value for messages: scalars as JSON text (long strings
/// cut), containers by kind, so an error line never quotes a whole subtree.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("{}...", Value::String(cut))
            } else {
                Value::String(s.clone()).to_string()
            }
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// `expected {what}, found {value}`.
pub(crate) fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, found {}", describe(v))
}

pub(crate) fn string<'a>(v: &'a Value, path: &str, p: &mut Problems) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        _ => {
            p.add(path, expected("a string", v));
            None
        }
    }
}

/// A string that must not be empty (names, paths, schedules).
pub(crate) fn non_empty<'a>(v: &'a Value, path: &str, p: &mut Problems) -> Option<&'a str> {
    let s = string(v, path, p)?;
    if s.trim().is_empty() {
        p.add(path, "must not be empty");
        return None;
    }
    Some(s)
}

pub(crate) fn boolean(v: &Value, path: &str, p: &mut Problems) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => {
            p.add(path, expected("true or false", v));
            None
        }
    }
}

/// An integer `>= min`. A float with no fractional part (`10.0`) counts as an integer, since
/// some JSON writers produce those; `10.5` does not.
pub(crate) fn integer(v: &Value, path: &str, min: u64, p: &mut Problems) -> Option<u64> {
    let Value::Number(n) = v else {
        p.add(path, expected("an integer", v));
        return None;
    };
    let value = if let Some(u) = n.as_u64() {
        u
    } else if n.as_i64().is_some() {
        // Only negative numbers are i64 without being u64.
        p.add(path, format!("must be at least {min}, found {n}"));
        return None;
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.fract() != 0.0 || !f.is_finite() {
            p.add(path, expected("an integer", v));
            return None;
        }
        // 2^64 as f64; `as` would saturate silently, so compare first.
        if f < 0.0 {
            p.add(path, format!("must be at least {min}, found {n}"));
            return None;
        }
        if f >= 18_446_744_073_709_551_616.0 {
            p.add(path, format!("{n} is too large"));
            return None;
        }
        f as u64
    };
    if value < min {
        p.add(path, format!("must be at least {min}, found {n}"));
        return None;
    }
    Some(value)
}

/// An integer `>= min` that fits the target type (counts, sizes in bytes).
pub(crate) fn integer_as<T: TryFrom<u64>>(
    v: &Value,
    path: &str,
    min: u64,
    p: &mut Problems,
) -> Option<T> {
    let n = integer(v, path, min, p)?;
    match T::try_from(n) {
        Ok(t) => Some(t),
        Err(_) => {
            p.add(path, format!("{n} is too large"));
            None
        }
    }
}

/// Seconds, fractions allowed, strictly positive (engine timeouts, as in the 2012 manifests).
pub(crate) fn seconds(v: &Value, path: &str, p: &mut Problems) -> Option<Duration> {
    let Some(secs) = v.as_f64() else {
        p.add(path, expected("a number of seconds", v));
        return None;
    };
    if secs <= 0.0 {
        p.add(
            path,
            format!("must be more than 0 seconds, found {}", describe(v)),
        );
        return None;
    }
    match Duration::try_from_secs_f64(secs) {
        // A positive value too small for a nanosecond would become a zero timeout.
        Ok(d) if d.is_zero() => {
            p.add(
                path,
                format!("must be at least 1 ns, found {}", describe(v)),
            );
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            p.add(path, format!("{} seconds is too large", describe(v)));
            None
        }
    }
}

/// Milliseconds, an integer `> 0` (intervals, windows, debounce).
pub(crate) fn millis(v: &Value, path: &str, p: &mut Problems) -> Option<Duration> {
    integer(v, path, 1, p).map(Duration::from_millis)
}

/// A fraction in `0..=1` (busyness thresholds).
pub(crate) fn fraction(v: &Value, path: &str, p: &mut Problems) -> Option<f64> {
    let Some(f) = v.as_f64() else {
        p.add(path, expected("a number from 0 to 1", v));
        return None;
    };
    if !(0.0..=1.0).contains(&f) {
        p.add(path, format!("must be from 0 to 1, found {}", describe(v)));
        return None;
    }
    Some(f)
}

/// One of a fixed set of names (`backend`, `framing`...), with a did-you-mean on a miss.
pub(crate) fn choice<T: Copy>(
    v: &Value,
    path: &str,
    choices: &[(&str, T)],
    p: &mut Problems,
) -> Option<T> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let Some(s) = v.as_str() else {
        p.add(
            path,
            expected(&format!("one of {}", quoted_list(&names)), v),
        );
        return None;
    };
    if let Some((_, t)) = choices.iter().find(|(n, _)| *n == s) {
        return Some(*t);
    }
    p.add(
        path,
        format!(
            "unknown value {}; expected one of {}{}",
            describe(v),
            quoted_list(&names),
            crate::suggest::hint(s, &names)
        ),
    );
    None
}

/// `"a", "b" or "c"`.
pub(crate) fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
