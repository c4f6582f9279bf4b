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
    },
    Delete {
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
}

/// The control endpoints and the requests waiting on the store.
#[derive(Debug, Default)]
pub(super) struct ControlState {
    endpoints: Vec<(EndpointId, String)>,
    next_token: u64,
    waits: HashMap<u64, StoreWait>,
    /// Apps with a store operation in flight.
    busy: BTreeSet<String>,
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
            let endpoint = EndpointId(self.next_endpoint);
            self.next_endpoint += 1;
            self.control.endpoints.push((endpoint, address.clone()));
            self.out.push_back(Output::Bind {
                endpoint,
                kind: super::SocketKind::Router,
                address,
                subscribe: Vec::new(),
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
            Action::Peers | Action::Fetch { .. } => {
                let name = match action {
                    Action::Peers => "peers",
                    _ => "fetch",
                };
                self.reply_error(
                    &requester,
                    status::INTERNAL_ERROR,
                    format!("`{name}` is not available on this node yet: it has no cluster"),
                );
            }
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
        if let Err(error) = Manifest::parse(&app, &manifest_json, base) {
            self.reply_error(&requester, status::BAD_REQUEST, error.to_string());
            return;
        }
        self.control.busy.insert(app.clone());
        self.store(
            StoreOp::PutApp {
                app: app.clone(),
                manifest_json: manifest_json.clone(),
                package,
            },
            StoreWait::Deploy {
                requester,
                app,
                manifest_json,
            },
        );
    }

    /// Whether `app` may be changed over control now.
    fn check_storable(&self, app: &str) -> Result<(), (u32, String)> {
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
            .or_else(|| self.failed.get(app).map(|f| f.origin));
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
        if self.live(&app).is_none() && !self.failed.contains_key(&app) {
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
            } => self.deploy_written(now, requester, app, &manifest_json, result),
            StoreWait::Delete { requester, app } => {
                self.delete_written(now, requester, app, result)
            }
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
        result: Result<StoreDone, StoreError>,
    ) {
        self.control.busy.remove(&app);
        match result {
            Ok(done) => self.deploy_stored(now, requester, app, manifest_json, done),
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
        self.control.busy.remove(&app);
        match result {
            Ok(_) => {
                self.remove(now, &app, None);
                self.failed.remove(&app);
                self.unschedule_app(&app);
                self.log(LogLevel::Info, format!("{app}: deleted"));
                self.reply_ok(&requester, json!({ "app": app }));
            }
            Err(error) => {
                let message = format!("{app}: not deleted: {error}");
                self.log(LogLevel::Error, message.clone());
                self.reply_error(&requester, status::INTERNAL_ERROR, message);
            }
        }
    }

    fn deploy_stored(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        manifest_json: &[u8],
        done: StoreDone,
    ) {
        match Manifest::parse(&app, manifest_json, done.package_dir.as_deref()) {
            Ok(manifest) => {
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
        let parsed = stored.and_then(|s| {
            Manifest::parse(&app, &s.manifest_json, s.package_dir.as_deref())
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok(manifest) => {
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
        let mut frames = requester.envelope.clone();
        frames.push(reply.encode());
        self.out.push_back(Output::Send {
            endpoint: requester.endpoint,
            frames,
        });
    }
}
