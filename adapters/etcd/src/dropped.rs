//! Values in etcd that are not what the node expects: dropped, counted, and logged like
//! malformed datagrams (the first ten in full, then one line per thousand), so a flood of
//! garbage cannot flood the log.

use cocaine_core::cluster::etcd::RecordError;

const LOGGED: u64 = 10;
const LOG_EVERY: u64 = 1000;

/// The count of values dropped since the node started (across etcd sessions).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub count: u64,
}

impl Dropped {
    /// Counts one; the line to log, if this one is to be logged.
    pub fn count(&mut self, key: &[u8], error: &RecordError) -> Option<String> {
        self.count += 1;
        let n = self.count;
        (n <= LOGGED || n.is_multiple_of(LOG_EVERY)).then(|| {
            let key = String::from_utf8_lossy(&key[..key.len().min(200)]);
            format!("etcd: dropped the value at {key:?} ({n} so far): {error}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_is_counted_and_only_some_are_logged() {
        let mut d = Dropped::default();
        let error = RecordError::Key("x".into());
        let logged = (0..2500)
            .filter(|_| d.count(b"/cocaine/x", &error).is_some())
            .count();
        assert_eq!(d.count, 2500);
        assert_eq!(logged, 10 + 2, "ten, then the 1000th and the 2000th");
        let long = vec![b'k'; 10_000];
        let line = Dropped::default().count(&long, &error).unwrap();
        assert!(line.len() < 400, "a hostile key is cut: {}", line.len());
    }
}
