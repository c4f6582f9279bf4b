//! A first deploy of an app with `pool-min` ≥ 1 is answered once its first worker has
//! finished its handshake, or has failed (its code does not exist or does not import): a
//! deploy says whether the app can serve, not only that its endpoints are bound. The wait is
//! bounded by the engine's `startup-timeout`, after which a worker that never said hello
//! counts as failed.

use super::app::Phase;
use super::Node;
use crate::ids::AppId;
use crate::status;

impl Node {
    /// Answers the deploys waiting for a first worker that came up or failed, among the apps
    /// `changed` (drained this pass): an app not changed since its last drain has no news.
    pub(super) fn check_first_workers(&mut self, changed: &[AppId]) {
        for &id in changed {
            let Some(app) = self.apps.get(&id) else {
                continue;
            };
            if app.phase != Phase::Running || app.waiters.is_empty() {
                continue;
            }
            let outcome = if app.engine.ever_ready() {
                Ok(())
            } else if let Some(reason) = app.engine.failing() {
                Err(reason)
            } else {
                continue;
            };
            let Some(app) = self.apps.get_mut(&id) else {
                continue;
            };
            let waiters = std::mem::take(&mut app.waiters);
            let name = app.name.to_string();
            match outcome {
                Ok(()) => {
                    let reply = self.app_summary(id, false);
                    for waiter in waiters {
                        self.reply_ok(&waiter, reply.clone());
                    }
                }
                Err(reason) => {
                    let message = format!(
                        "{name}: deployed, but it is broken: {reason} (it stays deployed and \
                         retries; `cocaine info {name}` has the whole report)"
                    );
                    for waiter in waiters {
                        self.reply_error(&waiter, status::INTERNAL_ERROR, message.clone());
                    }
                }
            }
        }
    }
}
