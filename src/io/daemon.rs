//! The daemon: the rule table, the captures its rules and tracking need, the safety rails, the
//! rules and tracked interfaces files, and request handling.
//!
//! Requests are handled synchronously (they are rare and short) under one lock on the
//! [`Registry`]. What they decide is pure ([`crate::admit`], [`crate::interfaces`]); what needs
//! the host (listing interfaces, preparing the reset path, opening a capture) goes through the
//! [`Sensor`], never while the lock is held. Captures run on their own threads and only ever see
//! immutable [`crate::rules::Matcher`] snapshots, so a request never stalls the packet path.
mod add;
mod captures;
mod persist;
mod report;
mod suspend;
#[cfg(test)]
mod tests;

use super::auth::Allowed;
use super::capture::Egress;
use super::journal::{Journal, Ticket};
use super::rules_file::RulesFile;
use super::sensor::{RunningCapture, Sensor};
use super::tracked_file::TrackedFile;
use crate::config::{Cidr, Config, Track};
use crate::flows::FlowBudget;
use crate::health::HealthWatch;
use crate::interfaces::{IfaceError, Links};
use crate::proto::{ErrorKind, Request, Response, RuleView};
use crate::rules::{Rule, RuleTable};
use crate::saved::Change;
use crate::time::{Clock, Instant};
use persist::Undo;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::Notify;

pub use persist::StateError;
pub use report::RESET_IF_PROBE_EVERY;

/// The configuration as the daemon applies it (names resolved, own addresses added).
#[derive(Debug, Clone)]
struct Settings {
    config: Config,
    protected: Arc<[Cidr]>,
    allowed: Allowed,
}

impl Settings {
    fn resolve(config: &Config, links: Result<Links, IfaceError>) -> Settings {
        let own: Vec<Cidr> = match links {
            Ok(links) => links.addresses().map(Cidr::host).collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list the sensor's own addresses to protect them");
                Vec::new()
            }
        };
        let protected: Vec<Cidr> = config.protected.iter().copied().chain(own).collect();
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

/// What the daemon has registered: its rules, the captures they and tracking need, the reset
/// interfaces they name as last probed.
#[derive(Default)]
struct Registry {
    table: RuleTable,
    captures: BTreeMap<String, Open>,
    health: HealthWatch,
    /// The interfaces captured without a rule, as the last look at the interfaces decided.
    tracked: BTreeSet<String>,
    /// Every sniff interface a rule has named (kept in the tracked interfaces file).
    remembered: BTreeSet<String>,
    /// Tracked interfaces whose capture failed to open, as they were then: logged once, and
    /// tried again only once they change (come up again, are recreated, get another address).
    open_failed: BTreeMap<String, crate::interfaces::Link>,
    /// Changes made whose journal line may not be on disk yet, oldest first, with how to undo
    /// them if it never gets there.
    pending: VecDeque<(Ticket, persist::Undo)>,
    /// Bumped by every change the captures must see (see [`Daemon::commit`]).
    version: u64,
    /// Per captured interface, the last snapshot built whole and the hosts changed since.
    layers: BTreeMap<String, captures::Layer>,
}

/// The last table version the captures were given, and whether a snapshot is being built.
#[derive(Default)]
struct Published {
    version: u64,
    building: bool,
}

/// A running capture and since when it runs.
struct Open {
    capture: Box<dyn RunningCapture>,
    since: Instant,
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
    sensor: Arc<dyn Sensor>,
    clock: Arc<dyn Clock>,
    settings: RwLock<Settings>,
    registry: Mutex<Registry>,
    published: Mutex<Published>,
    publishing: std::sync::Condvar,
    /// Held while a capture opens, so that two requests never open one interface twice.
    opening: Mutex<()>,
    egress: Arc<Egress>,
    /// The flows every capture's table may hold together.
    flow_budget: FlowBudget,
    refusals: Refusals,
    changed: Notify,
    started: Instant,
    rules_file: Option<RulesFile>,
    journal: Option<Journal>,
    tracked_file: Option<TrackedFile>,
    durability: Mutex<persist::Durability>,
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting the tracked captures")]
    Capture(#[from] super::capture::CaptureError),
    #[error(transparent)]
    State(#[from] StateError),
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

impl Daemon {
    /// A daemon configured by `config` on `sensor`: tracked captures start (an interface the
    /// configuration lists must open), saved rules come back. The tracked interfaces file lives
    /// beside the rules file.
    pub fn start(
        config: &Config,
        sensor: Arc<dyn Sensor>,
        clock: Arc<dyn Clock>,
        rules_file: Option<RulesFile>,
    ) -> Result<Arc<Self>, StartError> {
        let now = clock.now();
        let tracked_file = rules_file
            .as_ref()
            .map(|f| TrackedFile::new(f.path().parent().unwrap_or(std::path::Path::new("."))));
        let daemon = Arc::new(Daemon {
            settings: RwLock::new(Settings::resolve(config, sensor.links())),
            sensor,
            clock,
            registry: Mutex::default(),
            published: Mutex::default(),
            publishing: std::sync::Condvar::new(),
            opening: Mutex::default(),
            egress: Arc::new(Egress::new(config.rst_rate)),
            flow_budget: FlowBudget::new(config.max_flows),
            refusals: Refusals::default(),
            changed: Notify::new(),
            started: now,
            journal: rules_file
                .as_ref()
                .map(|f| Journal::new(f.path().parent().unwrap_or(std::path::Path::new(".")))),
            rules_file,
            tracked_file,
            durability: Mutex::default(),
        });
        tracing::info!(
            max_flows = config.max_flows,
            "flow table: at most {} flows for the whole daemon, shared by every capture{}",
            config.max_flows,
            if config.max_flows == 0 {
                " (tracking of silent flows off)"
            } else {
                ""
            }
        );
        daemon.load_remembered();
        if let Track::List(names) = &config.track {
            for iface in names {
                daemon.ensure_capture(iface)?;
            }
        }
        match daemon.sensor.links() {
            Ok(links) => daemon.track_interfaces(&links),
            Err(e) => tracing::error!(error = %e, "cannot list the interfaces to track"),
        }
        daemon.restore(now)?;
        Ok(daemon)
    }

    /// The interfaces rules named before a restart.
    fn load_remembered(&self) {
        let Some(file) = &self.tracked_file else {
            return;
        };
        match file.load() {
            Ok(names) => self.lock().remembered = names,
            Err(e) => tracing::error!(
                path = %file.path().display(), error = %e,
                "cannot read the tracked interfaces; they are tracked again once a rule names them"
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves a consistent table; keep serving.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The time on the daemon's clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Applies a new configuration (SIGHUP); rules and captures are kept.
    pub fn reload(&self, config: &Config) {
        let settings = Settings::resolve(config, self.sensor.links());
        let before = self.settings().protected;
        let after = Arc::clone(&settings.protected);
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        self.log_suspensions(&before, &after);
        self.egress
            .rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_rate(config.rst_rate);
        self.flow_budget.set_max(config.max_flows);
        match self.sensor.links() {
            Ok(links) => self.track_interfaces(&links),
            Err(e) => tracing::error!(error = %e, "cannot list the interfaces to track"),
        }
        self.checkpoint();
        let registry = self.lock();
        let rules = registry.table.len();
        self.commit(registry);
        tracing::info!("configuration reloaded; {rules} rules kept");
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
                let registry = self.lock();
                let rules = registry
                    .table
                    .iter()
                    .filter(|r| r.expires > now)
                    .map(|r| self.view(r, now))
                    .collect();
                Response::Rules { rules }
            }
            Request::Cancel(key) => {
                let key = match key.to_key() {
                    Ok(key) => key,
                    Err(e) => return error(ErrorKind::BadRequest, e.to_string()),
                };
                let mut registry = self.lock();
                let mut ticket = None;
                if registry.table.get(&key).is_some() {
                    match self.journal(&mut registry, Change::Cancel(&key), now) {
                        Ok(t) => ticket = t,
                        Err(e) => return error(ErrorKind::Unavailable, e),
                    }
                }
                let Some(rule) = registry.table.cancel(&key) else {
                    let port = key.port.map(|p| format!(" port {p}")).unwrap_or_default();
                    return error(
                        ErrorKind::NotFound,
                        format!(
                            "no rule {} for host {}{port}; see 'tcpreset list'",
                            key.engid, key.host
                        ),
                    );
                };
                let view = RuleView::of(&rule, now);
                if let Some(t) = ticket {
                    registry
                        .pending
                        .push_back((t, Undo::PutBack(vec![rule.clone()])));
                }
                self.commit(registry);
                if let Err(e) = self.durable(ticket, now) {
                    return error(ErrorKind::Unavailable, e);
                }
                audit(&rule, "rule cancelled");
                Response::Cancelled { rule: view }
            }
            Request::Flush => {
                let mut registry = self.lock();
                let ticket = match self.journal(&mut registry, Change::Flush, now) {
                    Ok(t) => t,
                    Err(e) => return error(ErrorKind::Unavailable, e),
                };
                let rules = registry.table.flush();
                if let Some(t) = ticket {
                    registry
                        .pending
                        .push_back((t, Undo::PutBack(rules.clone())));
                }
                self.commit(registry);
                if let Err(e) = self.durable(ticket, now) {
                    return error(ErrorKind::Unavailable, e);
                }
                for rule in &rules {
                    audit(rule, "rule cancelled (flush)");
                }
                Response::Flushed { count: rules.len() }
            }
            Request::Stats => Response::Stats {
                stats: self.stats(now),
            },
            Request::Show(show) => self.show(&show, now),
        }
    }

    /// After any change of the table: new snapshots for the captures (closing those no rule
    /// needs, once the lock is released), the expiry timer. Returns once the captures have a
    /// snapshot that holds the change. Snapshots are built one at a time, each from the table
    /// as it is then, so changes that arrive while one is built share the next: under a burst of
    /// changes the table is not copied once per change.
    fn commit(&self, mut registry: MutexGuard<'_, Registry>) {
        registry.version += 1;
        let version = registry.version;
        drop(registry);
        let mut p = self.published.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if p.version >= version {
                break;
            }
            if p.building {
                p = self.publishing.wait(p).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            p.building = true;
            drop(p);
            let mut registry = self.lock();
            let built = registry.version;
            let closed = self.sync_captures(&mut registry);
            drop(registry);
            drop(closed);
            p = self.published.lock().unwrap_or_else(|p| p.into_inner());
            p.version = p.version.max(built);
            p.building = false;
            self.publishing.notify_all();
        }
        drop(p);
        self.changed.notify_one();
    }

    /// Removes the rules whose deadline has come.
    pub fn expire(&self, now: Instant) -> Vec<Rule> {
        let mut registry = self.lock();
        let expired = registry.table.expire_until(now);
        for r in &expired {
            audit(r, "rule expired");
        }
        if !expired.is_empty() {
            // Nothing to save: a rule past its deadline is left out when the state is read.
            self.commit(registry);
        }
        expired
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().table.next_deadline()
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
