//! A strict JSON reader for manifests and control requests: like
//! `serde_json::from_slice::<Value>`, but a duplicate key anywhere is an error. `serde_json`
//! keeps the last of two equal keys without a word: a manifest would then run with a value its
//! author may not have meant (docs/manifest.md: nothing is silently ignored), and a signed request,
//! verified over its exact bytes and acted on as parsed, could mean two things. Nesting is
//! bounded by `serde_json`'s recursion limit, so no input can overflow the stack.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why bytes are not acceptable JSON. Both carry `serde_json`'s error, whose text ends with
/// the line and column.
pub(crate) enum JsonError {
    /// Not JSON at all.
    Syntax(serde_json::Error),
    /// A key appears twice in one object.
    Duplicate {
        key: String,
        error: serde_json::Error,
    },
}

impl JsonError {
    /// The error as `serde_json` tells it, position included.
    pub fn position_error(&self) -> &serde_json::Error {
        match self {
            JsonError::Syntax(error) | JsonError::Duplicate { error, .. } => error,
        }
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate keys.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict(&duplicate)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match (value, duplicate.into_inner()) {
        (Ok(v), None) => Ok(v),
        (Err(error), Some(key)) => Err(JsonError::Duplicate { key, error }),
        (Err(error), None) => Err(JsonError::Syntax(error)),
        // A duplicate always fails the parse where it is found.
        (Ok(_), Some(key)) => {
            let error = de::Error::custom(format_args!("duplicate key {key:?}"));
            Err(JsonError::Duplicate { key, error })
        }
    }
}

/// Deserializes a value, recording the first duplicate key it meets.
#[derive(Clone, Copy)]
struct Strict<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json never yields a non-finite number; refuse one rather than invent a value.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if object.contains_key(&key) {
                let message = format!("duplicate key {key:?}");
                *self.0.borrow_mut() = Some(key);
                return Err(de::Error::custom(message));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict() {
        assert!(matches!(
            parse(br#"{"a": [1, -2, 3.5, null, true, "x"]}"#),
            Ok(Value::Object(_))
        ));
        assert!(
            matches!(parse(br#"{"a": 1, "a": 2}"#), Err(JsonError::Duplicate { key, .. }) if key == "a")
        );
        assert!(
            matches!(parse(br#"{"a": {"b": 1, "b": 1}}"#), Err(JsonError::Duplicate { key, .. }) if key == "b")
        );
        assert!(matches!(parse(br#"{"a": 1} x"#), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"\xff"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(&[b'['; 10_000]), Err(JsonError::Syntax(_))));
    }
}
