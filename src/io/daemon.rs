//! The daemon's state: the rule table, the captures its rules need, the safety rails, the state
//! file, and request handling.
//!
//! Requests are handled synchronously under one lock (they are rare and short); the captures
//! run on their own threads and only ever see immutable [`crate::rules::Matcher`] snapshots,
//! so a request never stalls the packet path.
mod report;

use super::auth::Allowed;
use super::capture::{self, CaptureHandle, CaptureOptions, Egress};
use super::iface;
use super::inject::Injector;
use super::rules_file::RulesFile;
use crate::config::{Cidr, Config};
use crate::flows::FlowTable;
use crate::health::HealthWatch;
use crate::proto::{ErrorKind, Request, ResetView, Response, RuleResets, RuleView, ShowRequest};
use crate::rules::{Rule, RuleSpec, RuleTable, Upsert};
use crate::time::Instant;
use crate::{saved, syntax};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;

/// How often the reset interfaces the rules name are probed.
pub const RESET_IF_PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// The configuration as the daemon applies it (names resolved, own addresses added).
#[derive(Debug, Clone)]
struct Settings {
    config: Config,
    protected: Arc<[Cidr]>,
    allowed: Allowed,
}

impl Settings {
    fn resolve(config: &Config) -> Settings {
        let own = iface::all_addresses().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot list the sensor's own addresses to protect them");
            Vec::new()
        });
        let protected: Vec<Cidr> = config
            .protected
            .iter()
            .copied()
            .chain(own.into_iter().map(Cidr::host))
            .collect();
        let (allowed, unknown) = Allowed::resolve(&config.allowed_users, &config.allowed_groups);
        for u in unknown {
            tracing::warn!("configuration names {u}, which does not exist on this system");
        }
        Settings {
            config: config.clone(),
            protected: protected.into(),
            allowed,
        }
    }
}

#[derive(Default)]
struct State {
    table: RuleTable,
    captures: BTreeMap<String, CaptureHandle>,
    /// The reset interfaces the rules name, as last probed.
    health: HealthWatch,
}

#[derive(Default)]
struct Refusals {
    max_rules: AtomicU64,
    max_seconds: AtomicU64,
    protected: AtomicU64,
    unauthorized: AtomicU64,
    interface: AtomicU64,
}

/// Everything the control socket, the timers and the signals act on.
pub struct Daemon {
    settings: RwLock<Settings>,
    state: Mutex<State>,
    egress: Arc<Egress>,
    refusals: Refusals,
    changed: Notify,
    started: Instant,
    state_file: Option<RulesFile>,
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

impl Daemon {
    /// A daemon configured by `config`: tracked captures start, saved rules come back.
    pub fn start(
        config: &Config,
        state_file: Option<RulesFile>,
    ) -> Result<Arc<Self>, capture::CaptureError> {
        let daemon = Arc::new(Daemon {
            settings: RwLock::new(Settings::resolve(config)),
            state: Mutex::default(),
            egress: Arc::new(Egress::new(config.rst_rate)),
            refusals: Refusals::default(),
            changed: Notify::new(),
            started: Instant::now(),
            state_file,
        });
        {
            let mut state = daemon.lock();
            for iface in &config.track {
                let handle =
                    capture::start(iface, daemon.matcher(&state.table, iface), daemon.options())?;
                state.captures.insert(iface.clone(), handle);
            }
            daemon.restore(&mut state);
        }
        Ok(daemon)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent table; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn options(&self) -> CaptureOptions {
        let c = self.settings().config;
        CaptureOptions {
            flows: (c.max_flows > 0).then(|| FlowTable::new(c.max_flows, c.flow_idle())),
            budget: c.flow_rst_budget,
            egress: Arc::clone(&self.egress),
        }
    }

    fn matcher(&self, table: &RuleTable, iface: &str) -> Arc<crate::rules::Matcher> {
        let protected = Arc::clone(
            &self
                .settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .protected,
        );
        Arc::new(table.matcher(Some(iface)).with_protected(protected))
    }

    /// Applies a new configuration (SIGHUP); rules and captures are kept.
    pub fn reload(&self, config: &Config) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Settings::resolve(config);
        self.egress
            .rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_rate(config.rst_rate);
        let mut state = self.lock();
        for iface in &config.track {
            if !state.captures.contains_key(iface) {
                match capture::start(iface, self.matcher(&state.table, iface), self.options()) {
                    Ok(handle) => {
                        state.captures.insert(iface.clone(), handle);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot track {iface}"),
                }
            }
        }
        self.sync_captures(&mut state);
        tracing::info!("configuration reloaded; {} rules kept", state.table.len());
    }

    /// Signalled whenever the next deadline may have moved.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Checks a control-socket peer against the allow list; the error is the message of an
    /// [`ErrorKind::Unauthorized`] answer.
    pub fn authorize(&self, uid: u32, gid: u32, pid: Option<i32>) -> Result<(), String> {
        let allowed = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .allowed
            .clone();
        allowed.check(uid, gid, pid).map_err(|message| {
            self.refusals.unauthorized.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(uid, gid, pid, "refused: {message}");
            message
        })
    }

    /// Handles one request at `now`. Blocking (it may open a capture): call it off the reactor.
    pub fn handle(&self, request: Request, now: Instant) -> Response {
        match request {
            Request::Add(add) => match add.to_spec() {
                Ok(spec) => self.add(spec, now),
                Err(e) => error(ErrorKind::BadRequest, e.to_string()),
            },
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
                let key = match key.to_key() {
                    Ok(key) => key,
                    Err(e) => return error(ErrorKind::BadRequest, e.to_string()),
                };
                let mut state = self.lock();
                let Some(rule) = state.table.cancel(&key) else {
                    let port = key.port.map(|p| format!(" port {p}")).unwrap_or_default();
                    return error(
                        ErrorKind::NotFound,
                        format!(
                            "no rule {} for host {}{port}; see 'tcpreset list'",
                            key.engid, key.host
                        ),
                    );
                };
                audit(&rule, "rule cancelled");
                self.changed_state(&mut state);
                Response::Cancelled {
                    rule: RuleView::of(&rule, now),
                }
            }
            Request::Flush => {
                let mut state = self.lock();
                let rules = state.table.flush();
                for rule in &rules {
                    audit(rule, "rule cancelled (flush)");
                }
                self.changed_state(&mut state);
                Response::Flushed { count: rules.len() }
            }
            Request::Stats => Response::Stats {
                stats: self.stats(now),
            },
            Request::Show(show) => self.show(&show, now),
        }
    }

    fn refuse(
        &self,
        counter: &AtomicU64,
        kind: ErrorKind,
        spec: &RuleSpec,
        message: String,
    ) -> Response {
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            engid = %spec.key.engid, host = %spec.key.host, port = ?spec.key.port,
            "rule refused: {message}"
        );
        error(kind, message)
    }

    fn add(&self, spec: RuleSpec, now: Instant) -> Response {
        let settings = self.settings();
        if let Some(net) = settings
            .protected
            .iter()
            .find(|c| c.contains(spec.key.host))
        {
            let message = format!(
                "host {} is protected ({net}: in 'protected' of the configuration, or an address of this sensor); tcpresetd never resets it",
                spec.key.host
            );
            return self.refuse(
                &self.refusals.protected,
                ErrorKind::Protected,
                &spec,
                message,
            );
        }
        let max = settings.config.max_seconds;
        if spec.duration.as_secs() > max {
            let message = format!(
                "-d {} is longer than this sensor allows (max_seconds = {max}); ask for at most {max} seconds",
                spec.duration.as_secs()
            );
            return self.refuse(&self.refusals.max_seconds, ErrorKind::Limit, &spec, message);
        }
        let checked = iface::check_pair(&spec.sniff_if, &spec.reset_if)
            .and_then(|addrs| iface::check_family(&spec.reset_if, &addrs, spec.key.host));
        if let Err(e) = checked {
            let counter = &self.refusals.interface;
            return self.refuse(counter, ErrorKind::Interface, &spec, e.to_string());
        }
        if let Err(e) = Injector::new().prepare(&spec.reset_if) {
            return error(ErrorKind::Unavailable, e.to_string());
        }
        let mut state = self.lock();
        let max_rules = settings.config.max_rules;
        if state.table.get(&spec.key).is_none() && state.table.len() >= max_rules {
            let message = format!(
                "{max_rules} rules are alive, the most this sensor allows (max_rules); cancel some ('tcpreset list', 'tcpreset cancel') or raise max_rules"
            );
            return self.refuse(&self.refusals.max_rules, ErrorKind::Limit, &spec, message);
        }
        if let Err(e) = self.ensure_capture(&mut state, &spec.sniff_if) {
            return error(ErrorKind::Unavailable, e.to_string());
        }
        let (how, rule) = state.table.upsert(spec, now);
        let view = RuleView::of(rule, now);
        audit(
            rule,
            if how == Upsert::Added {
                "rule added"
            } else {
                "rule refreshed"
            },
        );
        self.changed_state(&mut state);
        let refreshed = how == Upsert::Refreshed;
        drop(state);
        // Watched from now on, so a later outage is compared with how it was (its IPv6 address).
        self.watch_reset_interfaces(now);
        Response::Added {
            rule: view,
            refreshed,
        }
    }

    fn ensure_capture(&self, state: &mut State, iface: &str) -> Result<(), capture::CaptureError> {
        if !state.captures.contains_key(iface) {
            let handle = capture::start(iface, self.matcher(&state.table, iface), self.options())?;
            state.captures.insert(iface.to_owned(), handle);
        }
        Ok(())
    }

    /// After any change of the table: new snapshots, the state file, the expiry timer.
    fn changed_state(&self, state: &mut State) {
        self.sync_captures(state);
        if let Some(file) = &self.state_file {
            if let Err(e) = file.save(&saved::to_json(&state.table)) {
                tracing::error!(path = %file.path().display(), error = %e, "cannot save the rules; they will not survive a restart");
            }
        }
        self.changed.notify_one();
    }

    fn restore(&self, state: &mut State) {
        let Some(file) = &self.state_file else {
            return;
        };
        let now = Instant::now();
        let text = match file.read() {
            Ok(Some(text)) => text,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(path = %file.path().display(), error = %e, "cannot read the saved rules");
                return;
            }
        };
        let (rules, expired) = match saved::from_json(&text, now) {
            Ok(loaded) => loaded,
            Err(e) => {
                let aside = file.move_aside(now.as_micros() / 1_000_000);
                tracing::error!(
                    path = %file.path().display(), error = %e, moved_to = ?aside.ok(),
                    "the saved rules are unreadable; moved aside, starting with none"
                );
                return;
            }
        };
        for r in rules {
            if let Err(e) = self.ensure_capture(state, &r.spec.sniff_if) {
                tracing::error!(error = %e, "restored rule cannot capture yet");
            }
            state.table.restore(r.spec.clone(), r.created, r.expires);
            if let Some(rule) = state.table.get(&r.spec.key) {
                audit(rule, "rule restored");
            }
        }
        tracing::info!(restored = state.table.len(), expired, "saved rules loaded");
        self.changed_state(state);
    }

    /// Removes the rules whose deadline has come.
    pub fn expire(&self, now: Instant) -> Vec<Rule> {
        let mut state = self.lock();
        let expired = state.table.expire_until(now);
        for r in &expired {
            audit(r, "rule expired");
        }
        if !expired.is_empty() {
            self.changed_state(&mut state);
        }
        expired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().table.next_deadline()
    }

    fn show(&self, show: &ShowRequest, now: Instant) -> Response {
        let host = match show.host.as_deref().map(syntax::host).transpose() {
            Ok(h) => h,
            Err(e) => return error(ErrorKind::BadRequest, e.to_string()),
        };
        let state = self.lock();
        let rules: Vec<RuleResets> = state
            .table
            .iter()
            .filter(|r| show.engid.as_ref().is_none_or(|e| *e == r.key.engid))
            .filter(|r| host.is_none_or(|h| h == r.key.host))
            .map(|r| RuleResets {
                rule: RuleView::of(r, now),
                ends_reset: r.stats.ends_reset(),
                resets: r
                    .stats
                    .resets()
                    .into_iter()
                    .map(|x| ResetView {
                        at_unix: x.at.as_secs_f64(),
                        end: endpoint(x.end),
                        peer: endpoint(x.peer),
                    })
                    .collect(),
            })
            .collect();
        if rules.is_empty() {
            return error(
                ErrorKind::NotFound,
                "no live rule matches; see 'tcpreset list'",
            );
        }
        Response::Shown { rules }
    }

    /// Stops every capture (for shutdown).
    pub fn stop_captures(&self) {
        let captures = std::mem::take(&mut self.lock().captures);
        drop(captures);
    }

    /// Gives every capture the snapshot of its rules, and stops captures that no rule needs
    /// and that are not tracked.
    fn sync_captures(&self, state: &mut State) {
        let needed = state.table.sniff_interfaces();
        let track = self.settings().config.track;
        state
            .captures
            .retain(|name, _| needed.contains(name) || track.contains(name));
        for (name, handle) in &state.captures {
            handle.update(self.matcher(&state.table, name));
        }
    }
}

fn endpoint((ip, port): (std::net::IpAddr, u16)) -> String {
    if ip.is_ipv6() {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// One audit line per rule event, as structured fields.
fn audit(rule: &Rule, event: &'static str) {
    tracing::info!(
        event,
        engid = %rule.key.engid,
        host = %rule.key.host,
        port = ?rule.key.port,
        sniff_if = %rule.sniff_if,
        reset_if = %rule.reset_if,
        expires_unix = rule.expires.as_secs_f64(),
        segments_matched = rule.stats.segments_matched(),
        rsts_sent = rule.stats.rsts_sent(),
        ends_reset = rule.stats.ends_reset(),
        "{event}"
    );
}
