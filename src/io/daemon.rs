//! The daemon's state: the rule table, the captures its rules need, and request handling.
//!
//! Requests are handled synchronously under one lock (they are rare and short); the captures
//! run on their own threads and only ever see immutable [`crate::rules::Matcher`] snapshots,
//! so a request never stalls the packet path.
use super::capture::{self, CaptureHandle};
use super::iface;
use super::inject::Injector;
use crate::flows::{self, FlowTable};
use crate::proto::{ErrorKind, Request, Response, RuleView};
use crate::rules::{Rule, RuleTable, Upsert};
use crate::time::Instant;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sniff interfaces captured from the start, even with no rule, so that flows opened
    /// before a rule arrives are known (and silent ones can be killed at once).
    pub track: Vec<String>,
    /// Most flows tracked per capture; 0 turns flow tracking off.
    pub max_flows: usize,
    /// A tracked flow with no traffic for this long is forgotten.
    pub flow_idle: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            track: Vec::new(),
            max_flows: flows::DEFAULT_MAX_FLOWS,
            flow_idle: flows::DEFAULT_IDLE,
        }
    }
}

#[derive(Default)]
struct State {
    table: RuleTable,
    captures: BTreeMap<String, CaptureHandle>,
}

/// Everything the control socket and the expiry timer act on.
#[derive(Default)]
pub struct Daemon {
    config: Config,
    state: Mutex<State>,
    changed: Notify,
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

impl Daemon {
    /// A daemon with `config`; captures of tracked interfaces start now.
    pub fn start(config: Config) -> Result<Arc<Self>, capture::CaptureError> {
        let daemon = Daemon {
            config,
            ..Daemon::default()
        };
        {
            let mut state = daemon.lock();
            for iface in &daemon.config.track {
                let handle = capture::start(iface, Arc::default(), daemon.flow_table())?;
                state.captures.insert(iface.clone(), handle);
            }
        }
        Ok(Arc::new(daemon))
    }

    fn flow_table(&self) -> Option<FlowTable> {
        (self.config.max_flows > 0)
            .then(|| FlowTable::new(self.config.max_flows, self.config.flow_idle))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters more than stopping resets altogether, so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signalled whenever the next deadline may have moved.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Handles one request at `now`. Blocking (it may open a capture): call it off the reactor.
    pub fn handle(&self, request: Request, now: Instant) -> Response {
        match request {
            Request::Add(add) => {
                let spec = match add.validate() {
                    Ok(spec) => spec,
                    Err(e) => return error(ErrorKind::BadRequest, e.to_string()),
                };
                self.add(spec, now)
            }
            Request::List => {
                let state = self.lock();
                let rules = state
                    .table
                    .iter()
                    .filter(|r| r.expires > now)
                    .map(|r| RuleView::of(r, now))
                    .collect();
                Response::Rules { rules }
            }
            Request::Cancel(key) => {
                let key = match key.validate() {
                    Ok(key) => key,
                    Err(e) => return error(ErrorKind::BadRequest, e.to_string()),
                };
                let mut state = self.lock();
                let Some(rule) = state.table.cancel(&key) else {
                    return error(
                        ErrorKind::NotFound,
                        format!(
                            "no rule {} for host {}{}; see 'tcpreset list'",
                            key.engid,
                            key.host,
                            key.port.map(|p| format!(" port {p}")).unwrap_or_default()
                        ),
                    );
                };
                tracing::info!(engid = %rule.key.engid, host = %rule.key.host, port = ?rule.key.port, "rule cancelled");
                self.sync_captures(&mut state);
                self.changed.notify_one();
                Response::Cancelled {
                    rule: RuleView::of(&rule, now),
                }
            }
            Request::Flush => {
                let mut state = self.lock();
                let count = state.table.flush().len();
                tracing::info!(count, "rules flushed");
                self.sync_captures(&mut state);
                self.changed.notify_one();
                Response::Flushed { count }
            }
        }
    }

    fn add(&self, spec: crate::rules::RuleSpec, now: Instant) -> Response {
        if let Err(e) = iface::check_pair(&spec.sniff_if, &spec.reset_if) {
            return error(ErrorKind::Interface, e.to_string());
        }
        if let Err(e) = Injector::new().prepare(&spec.reset_if) {
            return error(ErrorKind::Unavailable, e.to_string());
        }
        let mut state = self.lock();
        if !state.captures.contains_key(&spec.sniff_if) {
            let matcher = Arc::new(state.table.matcher(Some(&spec.sniff_if)));
            match capture::start(&spec.sniff_if, matcher, self.flow_table()) {
                Ok(handle) => {
                    state.captures.insert(spec.sniff_if.clone(), handle);
                }
                Err(e) => return error(ErrorKind::Unavailable, e.to_string()),
            }
        }
        let (how, rule) = state.table.upsert(spec, now);
        let view = RuleView::of(rule, now);
        tracing::info!(
            engid = %view.engid, host = %view.host, port = ?view.port,
            sniff_if = %view.sniff_if, reset_if = %view.reset_if,
            seconds = view.seconds_left,
            "rule {}", if how == Upsert::Added { "added" } else { "refreshed" }
        );
        self.sync_captures(&mut state);
        self.changed.notify_one();
        Response::Added {
            rule: view,
            refreshed: how == Upsert::Refreshed,
        }
    }

    /// Removes the rules whose deadline has come.
    pub fn expire(&self, now: Instant) -> Vec<Rule> {
        let mut state = self.lock();
        let expired = state.table.expire_until(now);
        for r in &expired {
            tracing::info!(
                engid = %r.key.engid, host = %r.key.host, port = ?r.key.port,
                segments_matched = r.stats.segments_matched(), rsts_sent = r.stats.rsts_sent(),
                "rule expired"
            );
        }
        if !expired.is_empty() {
            self.sync_captures(&mut state);
        }
        expired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().table.next_deadline()
    }

    /// Stops every capture (for shutdown).
    pub fn stop_captures(&self) {
        let captures = std::mem::take(&mut self.lock().captures);
        drop(captures);
    }
}

impl Daemon {
    /// Gives every capture the snapshot of its rules, and stops captures that no rule needs
    /// and that are not tracked.
    fn sync_captures(&self, state: &mut State) {
        let needed = state.table.sniff_interfaces();
        state
            .captures
            .retain(|name, _| needed.contains(name) || self.config.track.contains(name));
        for (name, handle) in &state.captures {
            handle.update(Arc::new(state.table.matcher(Some(name))));
        }
    }
}
