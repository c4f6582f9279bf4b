//! Reading the registry before the node starts: the tombstones etcd holds become the node's
//! first inputs, before the apps of its store, so that a node that was down while an app was
//! deleted does not start it again even when no peer that knows of the delete is running.

use std::time::Duration;

use cocaine_core::cluster::etcd::Layout;
use cocaine_core::cluster::tombstone::{self, Tombstone};
use cocaine_core::node::Input;
use etcd_client::{Client, ConnectOptions, GetOptions};

use crate::dropped::Dropped;
use crate::records::{judge, Judged};
use crate::EtcdError;

/// What the registry's tombstones say, as `Input::RestoreTombstone`s, with the lines to log
/// for values dropped; waits at most `timeout` for etcd (the node starts without them if etcd
/// does not answer: its peers' announcements carry the tombstones too).
pub fn read_tombstones(
    endpoints: &[String],
    layout: &Layout,
    timeout: Duration,
) -> Result<(Vec<Input>, Vec<String>), EtcdError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EtcdError::Runtime)?;
    runtime.block_on(async {
        let read = async {
            let options = ConnectOptions::new().with_connect_timeout(timeout);
            let mut client = Client::connect(endpoints, Some(options)).await?;
            client
                .get(layout.apps(), Some(GetOptions::new().with_prefix()))
                .await
        };
        let listed = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| EtcdError::Timeout("reading the registry", timeout))??;
        Ok(tombstones(
            layout,
            listed.kvs().iter().map(|kv| (kv.key(), kv.value())),
        ))
    })
}

fn tombstones<'a>(
    layout: &Layout,
    kvs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> (Vec<Input>, Vec<String>) {
    let mut dropped = Dropped::default();
    let mut inputs = Vec::new();
    let mut lines = Vec::new();
    for (key, value) in kvs {
        match judge(layout, key, value) {
            Judged::App(record) => {
                if let Some(at_unix_ms) = record.deleted_at {
                    let t = Tombstone {
                        version: record.version,
                        at_unix_ms,
                    };
                    inputs.push(Input::RestoreTombstone {
                        record: Ok(tombstone::encode(&record.app, t)),
                        app: record.app,
                    });
                }
            }
            Judged::BadApp(_, error) | Judged::Dropped(error) => {
                lines.extend(dropped.count(key, &error));
            }
            Judged::Member(_) => {}
        }
    }
    (inputs, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocaine_core::cluster::etcd::{AppRecord, DEFAULT_PREFIX};

    #[test]
    fn only_tombstones_become_inputs_and_garbage_is_counted() {
        let layout = Layout::new(DEFAULT_PREFIX).unwrap();
        let deleted = AppRecord {
            app: "gone".into(),
            version: 4,
            hash: String::new(),
            deleted_at: Some(1_700_000_000_000),
        }
        .encode();
        let live = AppRecord {
            app: "echo".into(),
            version: 2,
            hash: "ab".into(),
            deleted_at: None,
        }
        .encode();
        let kvs: Vec<(&[u8], &[u8])> = vec![
            (b"/cocaine/apps/gone", &deleted),
            (b"/cocaine/apps/echo", &live),
            (b"/cocaine/apps/bad", b"\x00garbage"),
        ];
        let (inputs, lines) = tombstones(&layout, kvs.into_iter());
        assert_eq!(inputs.len(), 1);
        match &inputs[0] {
            Input::RestoreTombstone { app, record } => {
                assert_eq!(app, "gone");
                let t = tombstone::decode("gone", record.as_ref().unwrap()).unwrap();
                assert_eq!((t.version, t.at_unix_ms), (4, 1_700_000_000_000));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("/cocaine/apps/bad"), "{}", lines[0]);
    }

    #[test]
    fn an_etcd_that_is_not_there_is_an_error_within_the_timeout() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let layout = Layout::new(DEFAULT_PREFIX).unwrap();
        let started = std::time::Instant::now();
        let result = read_tombstones(
            &[format!("http://127.0.0.1:{port}")],
            &layout,
            Duration::from_millis(500),
        );
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
