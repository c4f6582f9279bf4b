//! The IO resources the loop owns, by the ids the core uses, and their poll tokens.

use std::collections::HashMap;

use cocaine_core::{EndpointId, WorkerId};
use cocaine_os::channel::{Channel, ChannelListener};
use cocaine_os::process::WorkerProcess;
use cocaine_os::zmq_endpoint::ZmqEndpoint;
use mio::Token;

/// What a poll token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Signals,
    Endpoint(EndpointId),
    Listener(WorkerId),
    Channel(WorkerId),
    Output(WorkerId),
}

/// One worker's descriptors: the listener until it connects, then its channel; its process
/// and output pipe until it has exited and the pipe is drained.
#[derive(Debug, Default)]
pub(crate) struct WorkerIo {
    pub listener: Option<(ChannelListener, Token)>,
    pub channel: Option<(Channel, Token)>,
    pub process: Option<WorkerProcess>,
    pub output: Option<Token>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub endpoints: HashMap<EndpointId, (ZmqEndpoint, Token)>,
    pub workers: HashMap<WorkerId, WorkerIo>,
    pub sources: HashMap<Token, Source>,
    next: usize,
}

impl Registry {
    pub fn token(&mut self, source: Source) -> Token {
        // Token 0 is the signals'.
        self.next += 1;
        let token = Token(self.next);
        self.sources.insert(token, source);
        token
    }
}
