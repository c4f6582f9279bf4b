//! The metrics endpoint (`NodeConfig::metrics`, `cocaine node --metrics ADDRESS`): a plain TCP
//! listener answering `GET /metrics` with the Prometheus text format
//! (`crate::stats::prometheus`), over the core's own HTTP head parser. One request per
//! connection (`connection: close`); anything else gets its HTTP error.

use bytes::{Bytes, BytesMut};

use super::io::{BindError, Output, SocketKind};
use super::Node;
use crate::http::request::{find_head_end, parse_head};
use crate::http::response::{encode_error, encode_head, BodyFraming};
use crate::ids::{ConnId, EndpointId, IdMap};
use crate::process::LogLevel;
use crate::stats::prometheus::{self, AppMetrics, EngineMetrics};
use crate::time::Now;

/// The longest request head read; a longer one is 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// The content type Prometheus scrapers expect for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics endpoints and the connections reading a request.
#[derive(Debug, Default)]
pub(super) struct MetricsState {
    endpoints: Vec<(EndpointId, String)>,
    conns: IdMap<ConnId, BytesMut>,
}

/// An app's name, state and, when it runs, its engine's snapshot and pool bounds.
type Snapshot = (
    String,
    String,
    Option<(crate::engine::EngineInfo, usize, usize)>,
);

/// What happened on a metrics connection.
pub(super) enum ConnEvent {
    Data(Bytes),
    Eof,
    Closed,
}

impl Node {
    /// Asks for the metrics endpoints of the config; called once, when the node is made.
    pub(super) fn bind_metrics(&mut self) {
        for address in self.config.metrics.clone() {
            let endpoint = EndpointId(self.next_endpoint);
            self.next_endpoint += 1;
            self.metrics.endpoints.push((endpoint, address.clone()));
            self.out.push_back(Output::Bind {
                endpoint,
                kind: SocketKind::Tcp,
                address,
                subscribe: Vec::new(),
                max_message: None,
            });
        }
    }

    pub(super) fn owns_metrics(&self, endpoint: EndpointId) -> bool {
        self.metrics.endpoints.iter().any(|(e, _)| *e == endpoint)
    }

    pub(super) fn owns_metrics_conn(&self, conn: ConnId) -> bool {
        self.metrics.conns.contains_key(&conn)
    }

    /// Closes the metrics endpoints (the node is stopping).
    pub(super) fn unbind_metrics(&mut self) {
        for (endpoint, _) in std::mem::take(&mut self.metrics.endpoints) {
            self.out.push_back(Output::Unbind { endpoint });
        }
    }

    pub(super) fn metrics_bound(&mut self, endpoint: EndpointId, result: Result<(), BindError>) {
        let address = self
            .metrics
            .endpoints
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        match result {
            Ok(()) => self.log(
                LogLevel::Info,
                format!("metrics endpoint listening on {address} (GET /metrics)"),
            ),
            Err(error) => {
                let reason = format!("cannot bind the metrics endpoint {address}: {error}");
                self.log(LogLevel::Error, reason.clone());
                self.out.push_back(Output::Fatal { reason });
            }
        }
    }

    pub(super) fn metrics_accepted(&mut self, conn: ConnId) {
        self.metrics.conns.insert(conn, BytesMut::new());
    }

    pub(super) fn metrics_conn(&mut self, now: Now, conn: ConnId, event: ConnEvent) {
        let bytes = match event {
            ConnEvent::Data(bytes) => bytes,
            ConnEvent::Eof => {
                // The client sent no more before a whole head: nothing to answer.
                self.metrics.conns.remove(&conn);
                self.out.push_back(Output::ConnClose { conn });
                return;
            }
            ConnEvent::Closed => {
                self.metrics.conns.remove(&conn);
                return;
            }
        };
        let Some(buf) = self.metrics.conns.get_mut(&conn) else {
            return;
        };
        let searched = buf.len();
        buf.extend_from_slice(&bytes);
        let Some(end) = find_head_end(buf, searched) else {
            if buf.len() > MAX_HEAD {
                self.metrics_answer(conn, Err((431, "request head too large")), false);
            }
            return;
        };
        let head = match parse_head(&buf[..end.min(MAX_HEAD + 4)]) {
            Ok(Some((head, _))) => head,
            // Blank lines before the request line: wait for the rest.
            Ok(None) if end <= MAX_HEAD => return,
            Ok(None) => {
                self.metrics_answer(conn, Err((431, "request head too large")), false);
                return;
            }
            Err(reject) => {
                self.metrics_answer(conn, Err((reject.status, reject.reason)), false);
                return;
            }
        };
        let head_only = head.method == "HEAD";
        let answer = match (head.method.as_str(), head.path.as_str()) {
            ("GET" | "HEAD", "/metrics") => Ok(self.metrics_text(now)),
            ("GET" | "HEAD", _) => Err((404, "only /metrics is served here")),
            _ => Err((405, "only GET and HEAD are served here")),
        };
        self.metrics_answer(conn, answer, head_only);
    }

    /// Writes the response and closes the connection.
    fn metrics_answer(
        &mut self,
        conn: ConnId,
        answer: Result<String, (u16, &str)>,
        head_only: bool,
    ) {
        self.metrics.conns.remove(&conn);
        let mut out = BytesMut::new();
        match answer {
            Ok(text) => {
                let headers = [("content-type".to_owned(), CONTENT_TYPE.to_owned())];
                let framing = BodyFraming::Length(text.len() as u64);
                encode_head(&mut out, 200, &headers, framing, Some("close"));
                if !head_only {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            Err((status, message)) => {
                encode_error(&mut out, status, message, head_only, Some("close"));
            }
        }
        self.out.push_back(Output::ConnSend {
            conn,
            bytes: out.freeze(),
        });
        self.out.push_back(Output::ConnClose { conn });
    }

    /// Every app the node knows, running or not, as metrics.
    fn metrics_text(&self, now: Now) -> String {
        let uptime = self
            .started_at
            .map(|t| now.mono.saturating_duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        let list = self.list_apps();
        let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
        let infos: Vec<Snapshot> = entries
            .iter()
            .map(|e| {
                let name = e["app"].as_str().unwrap_or_default().to_owned();
                let state = e["state"].as_str().unwrap_or_default().to_owned();
                let engine = self.live(&name).map(|a| {
                    let c = a.engine.config();
                    (a.engine.info(), c.pool_min, c.pool_limit)
                });
                (name, state, engine)
            })
            .collect();
        let apps: Vec<AppMetrics<'_>> = infos
            .iter()
            .map(|(app, state, engine)| AppMetrics {
                app,
                state,
                engine: engine
                    .as_ref()
                    .map(|(info, pool_min, pool_limit)| EngineMetrics {
                        info,
                        pool_min: *pool_min,
                        pool_limit: *pool_limit,
                    }),
            })
            .collect();
        let mut text = prometheus::render(uptime, &apps);
        text.push_str(&self.shared.spill.prometheus());
        text
    }
}
