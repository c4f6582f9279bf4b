//! Turning replies and engine events into pubsub messages (PROTOCOL.md §6).

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

/// The topic frame: `"<app>:<source> <field> <hostname> <unix seconds with 3 decimals>"`.
/// Spaces in a field name become `_` so the envelope stays four words.
pub fn envelope(app: &str, source: &str, field: &str, hostname: &str, unix_ms: u64) -> Bytes {
    let field = field.replace(' ', "_");
    let text = format!(
        "{app}:{source} {field} {hostname} {}.{:03}",
        unix_ms / 1000,
        unix_ms % 1000
    );
    Bytes::from(text)
}

/// The fields a reply publishes as: a JSON object's top-level fields one by one; any other
/// JSON value, UTF-8 text or bytes as the single field `result`. An empty reply publishes
/// nothing.
pub fn fields_of_reply(chunks: &[Bytes]) -> Vec<(String, Value)> {
    let total: usize = chunks.iter().map(Bytes::len).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut joined = Vec::with_capacity(total);
    for chunk in chunks {
        joined.extend_from_slice(chunk);
    }
    match serde_json::from_slice::<Value>(&joined) {
        Ok(Value::Object(map)) => map.into_iter().collect(),
        Ok(other) => vec![("result".to_owned(), other)],
        Err(_) => match String::from_utf8(joined) {
            Ok(text) => vec![("result".to_owned(), Value::String(text))],
            Err(e) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
                let mut map = Map::new();
                map.insert("base64".to_owned(), Value::String(encoded));
                vec![("result".to_owned(), Value::Object(map))]
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_has_four_words() {
        let e = envelope("app", "aggregate", "my field", "host", 1_700_000_000_042);
        assert_eq!(&e[..], b"app:aggregate my_field host 1700000000.042");
    }

    #[test]
    fn objects_split_into_fields() {
        let fields = fields_of_reply(&[
            Bytes::from_static(b"{\"a\": 1, "),
            Bytes::from_static(b"\"b\": [2]}"),
        ]);
        assert_eq!(
            fields,
            vec![("a".to_owned(), json!(1)), ("b".to_owned(), json!([2]))]
        );
    }

    #[test]
    fn other_values_are_results() {
        assert_eq!(
            fields_of_reply(&[Bytes::from_static(b"[1,2]")]),
            vec![("result".into(), json!([1, 2]))]
        );
        assert_eq!(
            fields_of_reply(&[Bytes::from_static(b"hello")]),
            vec![("result".into(), json!("hello"))]
        );
        assert_eq!(
            fields_of_reply(&[Bytes::from_static(b"\xff\x00")]),
            vec![("result".into(), json!({"base64": "/wA="}))]
        );
        assert!(fields_of_reply(&[Bytes::new()]).is_empty());
    }
}
