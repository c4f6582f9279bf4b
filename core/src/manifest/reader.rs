//! A JSON object reader that knows where it is: it builds key paths for messages, remembers
//! which keys the code asked for, and at the end reports every other key as unknown, with a
//! did-you-mean among the keys it asked for. So the list of accepted keys is exactly the code
//! that reads them, and the two cannot drift apart.

use super::error::Problems;
use super::value;
use crate::suggest;
use serde_json::{Map, Value};
use std::time::Duration;

/// `parent.key`, or `key` at the root.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// One JSON object being read.
pub(crate) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    asked: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// Reads `v` as an object at `path`; records a problem and returns `None` if it is not one.
    pub(crate) fn new(v: &'a Value, path: &str, what: &str, p: &mut Problems) -> Option<Self> {
        match v {
            Value::Object(map) => Some(Self {
                path: path.to_owned(),
                map,
                asked: Vec::new(),
            }),
            _ => {
                p.add(path, value::expected(what, v));
                None
            }
        }
    }

    /// The path of `key` in this object.
    pub(crate) fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of an optional key, marking the key as known.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        self.map.get(key)
    }

    /// The raw value of a required key; a problem if it is absent.
    pub(crate) fn require(&mut self, key: &'static str, p: &mut Problems) -> Option<&'a Value> {
        let v = self.get(key);
        if v.is_none() {
            p.add(self.path.clone(), format!("missing key {key:?}"));
        }
        v
    }

    /// Applies a typed view (from `value`) to an optional key.
    pub(crate) fn opt<T>(
        &mut self,
        key: &'static str,
        p: &mut Problems,
        read: impl FnOnce(&'a Value, &str, &mut Problems) -> Option<T>,
    ) -> Option<T> {
        let v = self.get(key)?;
        read(v, &self.at(key), p)
    }

    /// Applies a typed view to a required key.
    pub(crate) fn req<T>(
        &mut self,
        key: &'static str,
        p: &mut Problems,
        read: impl FnOnce(&'a Value, &str, &mut Problems) -> Option<T>,
    ) -> Option<T> {
        let v = self.require(key, p)?;
        read(v, &self.at(key), p)
    }

    /// An optional boolean.
    pub(crate) fn bool(&mut self, key: &'static str, p: &mut Problems) -> Option<bool> {
        self.opt(key, p, value::boolean)
    }

    /// An optional integer `>= min`, converted to the target type.
    pub(crate) fn int<T: TryFrom<u64>>(
        &mut self,
        key: &'static str,
        min: u64,
        p: &mut Problems,
    ) -> Option<T> {
        self.opt(key, p, |v, path, p| value::integer_as(v, path, min, p))
    }

    /// Optional seconds (fractions allowed, `> 0`).
    pub(crate) fn secs(&mut self, key: &'static str, p: &mut Problems) -> Option<Duration> {
        self.opt(key, p, value::seconds)
    }

    /// Optional milliseconds (an integer `> 0`).
    pub(crate) fn ms(&mut self, key: &'static str, p: &mut Problems) -> Option<Duration> {
        self.opt(key, p, value::millis)
    }

    /// Whether the object holds `key`, without marking it as known.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Reports every key that was never asked for.
    pub(crate) fn finish(self, p: &mut Problems) {
        for key in self.map.keys() {
            if !self.asked.contains(&key.as_str()) {
                p.add(
                    join(&self.path, key),
                    format!("unknown key{}", suggest::hint(key, &self.asked)),
                );
            }
        }
    }
}
