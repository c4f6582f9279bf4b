//! Every app version of the node, kept so that a wake-up costs the same with one app as with
//! a thousand: the node learns which app is due first and which apps have engine outputs to
//! carry out without walking them all.
//!
//! Two things change only when an app is changed: its earliest deadline
//! ([`App::poll_timeout`]: its engine's timers and pool policy, and its own timers) and
//! whether its engine has outputs. And an app can be changed only through
//! [`Apps::get_mut`] (or [`Apps::insert`]), which marks it: *stale* (its deadline must be
//! read again) and *undrained* (its engine may have outputs). So the invariant is:
//!
//! - every app that is not stale has its exact deadline in the index (`deadlines`);
//! - every app whose engine may hold outputs is undrained.
//!
//! Nothing else needs to remember to update the index: there is no other way to a `&mut App`.
//! [`Apps::reindex`] reads the stale apps' deadlines again (the node calls it between timer
//! firings and at the end of every input), the node's drain carries out the undrained apps'
//! outputs ([`Apps::take_undrained`], [`Apps::drained`]), and [`Apps::earliest`] also looks
//! at apps still stale, so a wake-up is never missed even if a step forgot to reindex.
//!
//! Keeping it so: never add a way to a `&mut App` (or its engine, timers) that does not mark
//! it, and keep [`App::poll_timeout`] a function of the app's own state (a deadline that moved
//! with anything else, a shared clock or another app, would not be read again). Without the
//! index every input looked at every app two or three times (`core/benches/node_apps.rs`).

use std::collections::BTreeSet;
use std::time::Instant;

use super::app::App;
use crate::ids::{AppId, IdMap};

/// What the index knows of one app; kept in the app, changed only here.
#[derive(Debug, Default)]
pub(super) struct Mark {
    /// Changed since its deadline was last read.
    stale: bool,
    /// Changed since its engine outputs were last carried out.
    undrained: bool,
    /// The deadline it is indexed under.
    indexed: Option<Instant>,
}

/// The node's app versions by id, with the index of their deadlines.
#[derive(Debug, Default)]
pub(super) struct Apps {
    /// Hashed: a wake-up looks its apps up many times, at a cost that must not grow with the
    /// number of apps; [`Apps::in_id_order`] gives the order where it matters.
    map: IdMap<AppId, App>,
    /// `(deadline, app)` of every app with a deadline, exact for every app not stale.
    deadlines: BTreeSet<(Instant, AppId)>,
    /// Apps marked stale, each once (removed ones may linger: skipped).
    stale: Vec<AppId>,
    /// Apps marked undrained, each once (removed ones may linger: skipped).
    undrained: Vec<AppId>,
    /// Apps looked at by the index and the node's per-input loops since [`Apps::new_step`].
    visits: usize,
}

impl Apps {
    pub fn get(&self, id: &AppId) -> Option<&App> {
        self.map.get(id)
    }

    /// The app to change; it is marked stale and undrained.
    pub fn get_mut(&mut self, id: &AppId) -> Option<&mut App> {
        let app = self.map.get_mut(id)?;
        mark(app, *id, &mut self.stale, &mut self.undrained);
        Some(app)
    }

    pub fn insert(&mut self, id: AppId, mut app: App) {
        app.mark = Mark::default();
        mark(&mut app, id, &mut self.stale, &mut self.undrained);
        if let Some(old) = self.map.insert(id, app) {
            self.unindex(id, &old);
        }
    }

    pub fn remove(&mut self, id: &AppId) -> Option<App> {
        let app = self.map.remove(id)?;
        self.unindex(*id, &app);
        Some(app)
    }

    /// Every app, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &App> {
        self.map.values()
    }

    /// Every app, oldest first (costs a sort: not for every input).
    pub fn in_id_order(&self) -> Vec<&App> {
        let mut apps: Vec<(&AppId, &App)> = self.map.iter().collect();
        apps.sort_unstable_by_key(|(id, _)| **id);
        apps.into_iter().map(|(_, app)| app).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The earliest deadline of all apps.
    pub fn earliest(&self) -> Option<Instant> {
        let indexed = self.deadlines.first().map(|(at, _)| *at);
        let stale = self
            .stale
            .iter()
            .filter_map(|id| self.map.get(id)?.poll_timeout());
        indexed.into_iter().chain(stale).min()
    }

    /// Reads the deadline of every stale app again; `due` hears of each one now due by
    /// `now` (at or before it).
    pub fn reindex(&mut self, now: Instant, mut due: impl FnMut(AppId)) {
        // Popped, not taken: the list keeps its room for the next input.
        while let Some(id) = self.stale.pop() {
            let Some(app) = self.map.get_mut(&id).filter(|a| a.mark.stale) else {
                continue;
            };
            self.visits += 1;
            app.mark.stale = false;
            let at = app.poll_timeout();
            if app.mark.indexed != at {
                if let Some(old) = std::mem::replace(&mut app.mark.indexed, at) {
                    self.deadlines.remove(&(old, id));
                }
                if let Some(at) = at {
                    self.deadlines.insert((at, id));
                }
            }
            if at.is_some_and(|at| at <= now) {
                due(id);
            }
        }
    }

    /// The apps due by `now`, in id order; call [`Apps::reindex`] first.
    pub fn due_by(&self, now: Instant) -> BTreeSet<AppId> {
        (self.deadlines.iter())
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Moves the apps marked undrained since the last call into `into` (they stay marked
    /// until [`Apps::drained`]); an id may be of an app removed since.
    pub fn take_undrained(&mut self, into: &mut Vec<AppId>) {
        into.append(&mut self.undrained);
    }

    /// Puts back ids [`Apps::take_undrained`] gave that are left for later.
    pub fn keep_undrained(&mut self, ids: impl IntoIterator<Item = AppId>) {
        self.undrained.extend(ids);
    }

    pub fn has_undrained(&self) -> bool {
        !self.undrained.is_empty()
    }

    /// App `id`'s outputs were carried out, all of them: changes from now on mark it again.
    pub fn drained(&mut self, id: AppId) {
        if let Some(app) = self.map.get_mut(&id) {
            app.mark.undrained = false;
        }
    }

    /// Counts a look at one app by the node's per-input work.
    pub fn visit(&mut self) {
        self.visits += 1;
    }

    /// Starts counting the visits of a new input.
    pub fn new_step(&mut self) {
        self.visits = 0;
    }

    /// Apps looked at since [`Apps::new_step`].
    pub fn visits(&self) -> usize {
        self.visits
    }

    /// Whether the index holds what a walk over every app finds (tests and fuzzing: it walks
    /// them all).
    pub fn check(&self) -> Result<(), String> {
        let mut indexed = 0;
        for (id, app) in &self.map {
            let stale = app.mark.stale;
            if stale && !self.stale.contains(id) {
                return Err(format!("app {id:?} is marked stale but not listed"));
            }
            if app.mark.undrained && !self.undrained.contains(id) {
                return Err(format!("app {id:?} is marked undrained but not listed"));
            }
            if let Some(at) = app.mark.indexed {
                indexed += 1;
                if !self.deadlines.contains(&(at, *id)) {
                    return Err(format!("app {id:?}'s deadline is not in the index"));
                }
            }
            if !stale && app.mark.indexed != app.poll_timeout() {
                return Err(format!(
                    "app {id:?} is indexed at {:?} but due at {:?}",
                    app.mark.indexed,
                    app.poll_timeout()
                ));
            }
        }
        if indexed != self.deadlines.len() {
            return Err(format!(
                "{} deadlines indexed for {indexed} apps",
                self.deadlines.len()
            ));
        }
        Ok(())
    }

    fn unindex(&mut self, id: AppId, app: &App) {
        if let Some(at) = app.mark.indexed {
            self.deadlines.remove(&(at, id));
        }
    }
}

fn mark(app: &mut App, id: AppId, stale: &mut Vec<AppId>, undrained: &mut Vec<AppId>) {
    if !app.mark.stale {
        app.mark.stale = true;
        stale.push(id);
    }
    if !app.mark.undrained {
        app.mark.undrained = true;
        undrained.push(id);
    }
}
