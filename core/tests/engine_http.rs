//! What the engine does with the worker channel's HTTP additions: `meta.http` goes out with
//! the invoke, and a reply head (`[9, sid, head]`) reaches a streamed reply's submitter and
//! nobody else.

use std::time::Instant;

use bytes::Bytes;
use cocaine_core::codec::http_wire::{HttpMeta, ReplyHead};
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::engine::{EngineConfig, JobPolicy, JobRequest, Origin, ReplyEvent, ReplyMode};
use cocaine_core::sim::{Behaviour, SimPool};

fn pool() -> SimPool<u32> {
    let behaviour = Behaviour {
        echo: false,
        ..Behaviour::ECHO
    };
    SimPool::new(Instant::now(), EngineConfig::default(), &["web"], behaviour)
}

fn meta() -> HttpMeta {
    HttpMeta {
        method: "GET".into(),
        path: "/x".into(),
        query: "a=1".into(),
        version: "1.1".into(),
        headers: vec![("host".into(), "h".into())],
    }
}

fn request(reply: u32, mode: ReplyMode) -> JobRequest<u32> {
    JobRequest {
        task: 0,
        event: "web".into(),
        policy: JobPolicy::default(),
        reply,
        mode,
        origin: Some(Box::new(Origin {
            user: None,
            peer: Some("127.0.0.1:4000".into()),
            http: Some(meta()),
        })),
        body: Some(vec![]),
    }
}

fn head() -> ReplyHead {
    ReplyHead {
        status: 404,
        headers: vec![("x-why".into(), "gone".into())],
    }
}

/// Runs one job to its worker and answers it with a head, a chunk and its end.
fn answer_with_head(p: &mut SimPool<u32>, mode: ReplyMode) -> Vec<ReplyEvent> {
    p.submit_request(request(1, mode)).unwrap();
    let worker = *p.workers.keys().next().expect("a worker was spawned");
    let invoke = p.workers[&worker]
        .received
        .iter()
        .find_map(|m| match m {
            WorkerMessage::Invoke { sid, meta, .. } => Some((*sid, meta.clone())),
            _ => None,
        })
        .expect("the job reached the worker");
    let (sid, job_meta) = invoke;
    assert_eq!(job_meta.http.as_deref(), Some(&meta()));
    assert_eq!(job_meta.peer.as_deref(), Some("127.0.0.1:4000"));
    for message in [
        WorkerMessage::Head { sid, head: head() },
        WorkerMessage::Chunk {
            sid,
            data: Bytes::from_static(b"nope"),
        },
        WorkerMessage::Choke { sid },
    ] {
        p.send(worker, &message);
    }
    p.replies_for(&1)
}

#[test]
fn a_streamed_reply_gets_the_head_before_its_chunks() {
    let mut p = pool();
    assert_eq!(
        answer_with_head(&mut p, ReplyMode::Stream),
        vec![
            ReplyEvent::Head(head()),
            ReplyEvent::Chunk(Bytes::from_static(b"nope")),
            ReplyEvent::End
        ]
    );
    assert!(!ReplyEvent::Head(head()).is_terminal());
}

#[test]
fn a_collected_reply_has_no_head() {
    let mut p = pool();
    assert_eq!(
        answer_with_head(&mut p, ReplyMode::Collect { limit: 100 }),
        vec![ReplyEvent::Collected(vec![Bytes::from_static(b"nope")])]
    );
}
