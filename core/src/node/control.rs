//! The node's control endpoint (PROTOCOL.md §7): requests decoded by [`crate::control`],
//! carried out against the node's apps, the store and the manual scheduler, and answered.
//!
//! Anything that changes the store is answered only once the store has done it
//! (`Output::Store`, then `Input::Stored`), and a deploy only once the app is also up (or
//! could not start). One store operation per app at a time: a second one is 409, so two
//! deploys can never interleave their writes and starts.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::{json, Value};

use super::io::{AppOrigin, Output, ScheduledJob, StoreDone, StoreError, StoreOp, StoredApp};
use super::lifecycle::FailedApp;
use super::Node;
use crate::control::{Action, ControlReply, ControlRequest};
use crate::ids::EndpointId;
use crate::manifest::Manifest;
use crate::process::LogLevel;
use crate::status;
use crate::time::Now;

/// The largest control frame by default: packages travel in control requests.
pub const DEFAULT_CONTROL_MAX_MESSAGE: usize = 64 << 20;

/// Who asked: the control endpoint and the routing frames (with the empty delimiter) to
/// address the reply with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Requester {
    endpoint: EndpointId,
    envelope: Vec<Bytes>,
}

/// What a store operation in flight was for.
#[derive(Debug)]
pub(super) enum StoreWait {
    Deploy {
        requester: Requester,
        app: String,
        manifest_json: Bytes,
        /// Kept for peers that fetch a replicated app.
        package: Option<Bytes>,
    },
    Delete {
        requester: Requester,
        app: String,
    },
    Stop {
        requester: Requester,
        app: String,
    },
    Start {
        requester: Requester,
        app: String,
    },
    Schedule {
        requester: Requester,
        job: ScheduledJob,
    },
    Unschedule {
        requester: Option<Requester>,
        id: String,
    },
    /// Tidying nobody waits for (old revisions); a failure is only logged.
    Tidy {
        what: String,
    },
    /// A replicated app copied from a peer (docs/cluster.md).
    Pulled {
        app: String,
        manifest_json: Bytes,
        package: Option<Bytes>,
        peer: String,
    },
    /// A replicated app a peer's tombstone deleted.
    PeerDelete {
        app: String,
    },
}

/// The control endpoints and the requests waiting on the store.
#[derive(Debug, Default)]
pub(super) struct ControlState {
    endpoints: Vec<(EndpointId, String)>,
    next_token: u64,
    waits: HashMap<u64, StoreWait>,
    /// Apps with a store operation in flight.
    pub(super) busy: BTreeSet<String>,
}

impl ControlState {
    pub fn owns(&self, endpoint: EndpointId) -> bool {
        self.endpoints.iter().any(|(e, _)| *e == endpoint)
    }

    pub fn endpoints(&self) -> Vec<EndpointId> {
        self.endpoints.iter().map(|(e, _)| *e).collect()
    }

    pub fn clear(&mut self) {
        self.endpoints.clear();
    }

    fn address(&self, endpoint: EndpointId) -> &str {
        self.endpoints
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map(|(_, a)| a.as_str())
            .unwrap_or("?")
    }
}

impl Node {
    /// Asks for the control endpoints of the config; called once, when the node is made.
    pub(super) fn bind_control(&mut self) {
        for address in self.config.control.clone() {
            let address = self.on_host(&address);
            let endpoint = EndpointId(self.next_endpoint);
            self.next_endpoint += 1;
            self.control.endpoints.push((endpoint, address.clone()));
            self.out.push_back(Output::Bind {
                endpoint,
                kind: super::SocketKind::Router,
                address,
                subscribe: Vec::new(),
                max_message: Some(self.config.control_max_message),
            });
        }
    }

    pub(super) fn control_bound(
        &mut self,
        endpoint: EndpointId,
        result: Result<(), super::io::BindError>,
    ) {
        let address = self.control.address(endpoint).to_owned();
        match result {
            Ok(()) => {
                self.log(
                    LogLevel::Info,
                    format!("control endpoint listening on {address}"),
                );
                self.out.push_back(Output::ControlReady { address });
            }
            Err(error) => {
                let reason = format!("cannot bind the control endpoint {address}: {error}");
                self.log(LogLevel::Error, reason.clone());
                self.out.push_back(Output::Fatal { reason });
            }
        }
    }

    /// A message on a control endpoint: `[routing..., "", json, binary frames...]`.
    pub(super) fn control_received(&mut self, now: Now, endpoint: EndpointId, frames: Vec<Bytes>) {
        let Some(split) = frames.iter().position(Bytes::is_empty) else {
            // No delimiter: answer the sender by its identity, the first frame, if it has one.
            if let Some(identity) = frames.into_iter().next() {
                let requester = Requester {
                    endpoint,
                    envelope: vec![identity, Bytes::new()],
                };
                self.reply_error(
                    &requester,
                    status::BAD_REQUEST,
                    "no empty delimiter frame before the request; use REQ, or send \"\" first from a DEALER",
                );
            }
            return;
        };
        let mut frames = frames;
        let body = frames.split_off(split + 1);
        let requester = Requester {
            endpoint,
            envelope: frames,
        };
        let request = match ControlRequest::decode(&body, self.config.control_max_message) {
            Ok(request) => request,
            Err(error) => {
                self.reply(&requester, ControlReply::from(&error));
                return;
            }
        };
        if !self.control_authorized(now, &requester, request.signed.as_ref()) {
            return;
        }
        self.control_action(now, requester, request.action);
    }

    /// Carries out one decoded control request.
    fn control_action(&mut self, now: Now, requester: Requester, action: Action) {
        match action {
            Action::Deploy {
                app,
                manifest,
                package,
            } => self.control_deploy(requester, app, manifest, package),
            Action::Delete { app } => self.control_delete(requester, app),
            Action::Reload { app } => self.control_reload(now, requester, app),
            Action::List => {
                let list = self.list_apps();
                self.reply_ok(&requester, list);
            }
            Action::Info { app: None } => {
                let info = self.node_info(now);
                self.reply_ok(&requester, info);
            }
            Action::Info { app: Some(app) } => match self.app_info(&app) {
                Some(info) => self.reply_ok(&requester, info),
                None => self.reply_error(
                    &requester,
                    status::NOT_FOUND,
                    format!("no app named {app:?}"),
                ),
            },
            Action::Schedule {
                app,
                task,
                when,
                body,
            } => self.control_schedule(now, requester, app, task, when, body),
            Action::Unschedule { id } => self.control_unschedule(requester, id),
            Action::Keys => {
                let keys = self.keys_listing();
                self.reply_ok(&requester, keys);
            }
            Action::Pubkey => match self.node_public_key() {
                Ok(key) => self.reply_ok(&requester, key),
                Err(why) => self.reply_error(&requester, status::NOT_FOUND, why),
            },
            Action::Status => {
                let status = self.status(now);
                self.reply_ok(&requester, status);
            }
            Action::Stop { app } => self.control_stop(requester, app),
            Action::Start { app } => self.control_start(requester, app),
            Action::Scale {
                app,
                pool_min,
                pool_limit,
            } => self.control_scale(now, requester, app, pool_min, pool_limit),
            Action::Quit => self.control_quit(now, requester),
            Action::Fetch { app } => self.control_fetch(&requester, &app),
            Action::Peers => {
                let peers = self.peers_listing(now);
                self.reply_ok(&requester, peers);
            }
            Action::Resolve { app } => match self.resolve_app(now, &app) {
                Some(nodes) => self.reply_ok(&requester, nodes),
                None => self.reply_error(
                    &requester,
                    status::NOT_FOUND,
                    format!("no node known here runs an app named {app:?}"),
                ),
            },
        }
    }

    fn control_deploy(
        &mut self,
        requester: Requester,
        app: String,
        manifest: serde_json::Map<String, Value>,
        package: Option<Bytes>,
    ) {
        if let Err((code, message)) = self.check_storable(&app) {
            self.reply_error(&requester, code, message);
            return;
        }
        let manifest_json = Bytes::from(Value::Object(manifest).to_string());
        // Check everything before anything is written: relative paths resolve against the
        // package, wherever the store unpacks it.
        let base = package.as_ref().map(|_| std::path::Path::new("/package"));
        let checked = match Manifest::parse(&app, &manifest_json, base) {
            Ok(manifest) => self
                .replication_check_deploy(&manifest)
                .map_err(|m| (status::CONFLICT, m)),
            Err(error) => Err((status::BAD_REQUEST, error.to_string())),
        };
        if let Err((code, message)) = checked {
            self.reply_error(&requester, code, message);
            return;
        }
        self.control.busy.insert(app.clone());
        self.store(
            StoreOp::PutApp {
                app: app.clone(),
                manifest_json: manifest_json.clone(),
                package: package.clone(),
            },
            StoreWait::Deploy {
                requester,
                app,
                manifest_json,
                package,
            },
        );
    }

    /// Whether `app` may be changed over control now.
    pub(super) fn check_storable(&self, app: &str) -> Result<(), (u32, String)> {
        if self.shutting_down {
            return Err((status::UNAVAILABLE, "the node is shutting down".to_owned()));
        }
        if self.control.busy.contains(app) {
            return Err((
                status::CONFLICT,
                format!("another change to {app:?} is in progress; try again when it is answered"),
            ));
        }
        let origin = self
            .live(app)
            .map(|a| a.origin)
            .or_else(|| self.failed.get(app).map(|f| f.origin))
            .or_else(|| self.stopped.get(app).map(|f| f.origin));
        match origin {
            Some(AppOrigin::CommandLine) => Err((
                status::CONFLICT,
                format!("{app:?} was given on the command line; it cannot be changed over control"),
            )),
            Some(AppOrigin::Watched) => Err((
                status::CONFLICT,
                format!("{app:?} comes from the watched folder; change its file instead"),
            )),
            _ => Ok(()),
        }
    }

    fn control_delete(&mut self, requester: Requester, app: String) {
        if self.live(&app).is_none()
            && !self.failed.contains_key(&app)
            && !self.stopped.contains_key(&app)
        {
            self.reply_error(
                &requester,
                status::NOT_FOUND,
                format!("no app named {app:?}"),
            );
            return;
        }
        if let Err((code, message)) = self.check_storable(&app) {
            self.reply_error(&requester, code, message);
            return;
        }
        self.control.busy.insert(app.clone());
        self.store(
            StoreOp::DeleteApp { app: app.clone() },
            StoreWait::Delete { requester, app },
        );
    }

    fn control_reload(&mut self, now: Now, requester: Requester, app: String) {
        if self.stopped.contains_key(&app) {
            let message = format!("{app:?} is stopped; start it (`cocaine start {app}`)");
            self.reply_error(&requester, status::CONFLICT, message);
            return;
        }
        if self.control.busy.contains(&app) {
            let message = format!("another change to {app:?} is in progress");
            self.reply_error(&requester, status::CONFLICT, message);
            return;
        }
        let running = self
            .live(&app)
            .map(|a| (a.manifest.clone(), a.origin, a.revision));
        let (manifest, origin, revision) = match running {
            Some(found) => found,
            None => match self.failed.get(&app) {
                Some(FailedApp {
                    manifest: Some(manifest),
                    origin,
                    revision,
                    ..
                }) => ((**manifest).clone(), *origin, *revision),
                Some(failed) => {
                    let message = format!(
                        "{app:?} cannot be reloaded: {}; deploy it again",
                        failed.reason
                    );
                    self.reply_error(&requester, status::CONFLICT, message);
                    return;
                }
                None => {
                    self.reply_error(
                        &requester,
                        status::NOT_FOUND,
                        format!("no app named {app:?}"),
                    );
                    return;
                }
            },
        };
        self.deploy(now, manifest, origin, revision, Some(requester));
    }

    /// Asks the runtime for a store operation and remembers what it was for.
    pub(super) fn store(&mut self, op: StoreOp, wait: StoreWait) {
        let token = self.control.next_token;
        self.control.next_token += 1;
        self.control.waits.insert(token, wait);
        self.out.push_back(Output::Store { token, op });
    }

    /// The runtime carried out a store operation.
    pub(super) fn stored(&mut self, now: Now, token: u64, result: Result<StoreDone, StoreError>) {
        let Some(wait) = self.control.waits.remove(&token) else {
            return;
        };
        match wait {
            StoreWait::Deploy {
                requester,
                app,
                manifest_json,
                package,
            } => self.deploy_written(now, requester, app, &manifest_json, package, result),
            StoreWait::Pulled {
                app,
                manifest_json,
                package,
                peer,
            } => self.pulled_written(now, app, manifest_json, package, peer, result),
            StoreWait::PeerDelete { app } => self.peer_delete_written(now, app, result),
            StoreWait::Delete { requester, app } => {
                self.delete_written(now, requester, app, result)
            }
            StoreWait::Stop { requester, app } => self.stop_written(now, requester, app, result),
            StoreWait::Start { requester, app } => self.start_written(now, requester, app, result),
            StoreWait::Tidy { what } => {
                if let Err(error) = result {
                    self.log(LogLevel::Warn, format!("{what}: {error}"));
                }
            }
            StoreWait::Schedule { requester, job } => {
                self.schedule_stored(now, requester, job, result)
            }
            StoreWait::Unschedule { requester, id } => {
                if let Err(error) = &result {
                    self.log(
                        LogLevel::Error,
                        format!("scheduled job {id}: cannot remove it from the store: {error}"),
                    );
                }
                if let Some(requester) = requester {
                    match result {
                        Ok(_) => self.reply_ok(&requester, json!({ "id": id })),
                        Err(error) => {
                            self.reply_error(&requester, status::INTERNAL_ERROR, error.to_string())
                        }
                    }
                }
            }
        }
    }

    /// The store wrote a deployed app: it starts.
    fn deploy_written(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        manifest_json: &[u8],
        package: Option<Bytes>,
        result: Result<StoreDone, StoreError>,
    ) {
        self.control.busy.remove(&app);
        match result {
            Ok(done) => self.deploy_stored(now, requester, app, manifest_json, package, done),
            Err(StoreError::MissingCode(missing)) => {
                let message = format!("{app}: not deployed: {missing}");
                self.log(LogLevel::Warn, message.clone());
                self.reply_error(&requester, status::BAD_REQUEST, message);
            }
            Err(error) => {
                let message = format!("{app}: not deployed: cannot store it: {error}");
                self.log(LogLevel::Error, message.clone());
                self.reply_error(&requester, status::INTERNAL_ERROR, message);
            }
        }
    }

    /// The store deleted an app: it stops, and its scheduled jobs go.
    fn delete_written(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        result: Result<StoreDone, StoreError>,
    ) {
        if !self.store_went_through(&requester, &app, "deleted", result) {
            return;
        }
        self.remove(now, &app, None);
        self.failed.remove(&app);
        self.stopped.remove(&app);
        self.unschedule_app(&app);
        self.replication_deleted(now, &app);
        self.log(LogLevel::Info, format!("{app}: deleted"));
        self.reply_ok(&requester, json!({ "app": app }));
    }

    fn deploy_stored(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        manifest_json: &[u8],
        package: Option<Bytes>,
        done: StoreDone,
    ) {
        match Manifest::parse(&app, manifest_json, done.package_dir.as_deref()) {
            Ok(manifest) => {
                self.replication_stored(&manifest, manifest_json, package);
                self.deploy(
                    now,
                    manifest,
                    AppOrigin::Store,
                    done.revision,
                    Some(requester),
                );
            }
            Err(error) => {
                // Only a path that resolves differently in the unpacked package gets here.
                let message = error.to_string();
                let failed = FailedApp::stored_unparsed(message.clone(), done.revision);
                self.failed.insert(app, failed);
                self.reply_error(&requester, status::BAD_REQUEST, message);
            }
        }
    }

    /// An app read from the store at start.
    pub(super) fn restore(&mut self, now: Now, app: String, stored: Result<StoredApp, String>) {
        if let Some(running) = self.names.get(&app).and_then(|id| self.apps.get(id)) {
            let origin = running.origin;
            self.log(
                LogLevel::Warn,
                format!(
                    "{app}: the stored app is not started: an app of that name was given {}",
                    match origin {
                        AppOrigin::Watched => "in the watched folder",
                        _ => "on the command line",
                    }
                ),
            );
            return;
        }
        let revision = stored.as_ref().ok().map(|s| s.revision);
        let stopped = stored.as_ref().is_ok_and(|s| s.stopped);
        let parsed = stored.and_then(|s| {
            Manifest::parse(&app, &s.manifest_json, s.package_dir.as_deref())
                .map(|m| (m, s))
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok((manifest, stored)) => {
                if self.restored_but_deleted(&manifest) {
                    return;
                }
                self.replication_restored(&manifest, &stored);
                if stopped {
                    self.log(LogLevel::Info, format!("{app}: stopped, as it was left"));
                    let record = FailedApp {
                        origin: AppOrigin::Store,
                        reason: "stopped".to_owned(),
                        version: Some(manifest.version),
                        manifest: Some(Box::new(manifest)),
                        revision,
                    };
                    self.stopped.insert(app, record);
                    return;
                }
                self.deploy(now, manifest, AppOrigin::Store, revision, None);
            }
            Err(reason) => {
                self.log(
                    LogLevel::Error,
                    format!("{app}: the stored app cannot start: {reason}"),
                );
                self.failed
                    .insert(app, FailedApp::stored_unparsed(reason, revision));
            }
        }
    }

    pub(super) fn reply_ok(&mut self, requester: &Requester, value: Value) {
        self.reply(requester, ControlReply::ok(value));
    }

    pub(super) fn reply_error(
        &mut self,
        requester: &Requester,
        code: u32,
        message: impl Into<String>,
    ) {
        self.reply(requester, ControlReply::error(code, message));
    }

    fn reply(&mut self, requester: &Requester, reply: ControlReply) {
        self.reply_frames(requester, vec![reply.encode()]);
    }

    /// A reply of several frames after the envelope (`fetch`: the JSON, then the package).
    pub(super) fn reply_frames(&mut self, requester: &Requester, body: Vec<Bytes>) {
        let mut frames = requester.envelope.clone();
        frames.extend(body);
        self.out.push_back(Output::Send {
            endpoint: requester.endpoint,
            frames,
        });
    }
}
