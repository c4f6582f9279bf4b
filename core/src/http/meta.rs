//! The `meta.http` map a handler receives with an HTTP job.
//!
//! On the worker channel it is the invoke's `meta` key `http`:
//! `{"method": str, "path": str, "query": str, "version": "1.0" | "1.1",
//!   "headers": [[name, value], ...]}` with names lowercase, in the order received.

use super::request::RequestHead;
use crate::codec::http_wire::HttpMeta;
use crate::engine::Origin;

/// The `meta.http` of a job for `head`.
pub fn http_meta(head: &RequestHead) -> HttpMeta {
    HttpMeta {
        method: head.method.clone(),
        path: head.path.clone(),
        query: head.query.clone(),
        version: head.version.as_str().to_owned(),
        headers: head.headers.clone(),
    }
}

/// The `meta.http` of a job for `head`, taking its fields rather than copying them: each
/// request's head goes to its job once, and copying cost an allocation per string.
pub fn into_http_meta(head: RequestHead) -> HttpMeta {
    HttpMeta {
        method: head.method,
        path: head.path,
        query: head.query,
        version: head.version.as_str().to_owned(),
        headers: head.headers,
    }
}

/// The job origin for a request from `peer`: what the engine passes on in the invoke's meta
/// (`peer` and `http`).
pub fn origin(head: &RequestHead, peer: Option<String>) -> Origin {
    Origin {
        user: None,
        peer,
        http: Some(http_meta(head)),
    }
}
