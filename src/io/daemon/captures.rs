//! Which captures run: those the rules need and those tracking wants (the configured or
//! automatic sniff ports, and every interface a rule has named), opened through the sensor
//! (never under the registry's lock), given each new rule snapshot, reopened when their
//! interface comes back, closed when nothing needs them.
use super::{Daemon, Open, Registry};
use crate::config::Cidr;
use crate::flows::FlowTable;
use crate::interfaces::{self, Links};
use crate::io::capture::{CaptureError, CaptureOptions};
use crate::rules::{Matcher, Rule, RuleTable};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// The last snapshot of one interface's rules built whole, and the hosts whose rules changed
/// since: the next snapshot amends it with those hosts' rules, until they are too many.
pub(super) struct Layer {
    base: Arc<Matcher>,
    changed: foldhash::HashSet<IpAddr>,
    /// The protected networks `base` was built with (a reload that changes them rebuilds).
    protected: Arc<[Cidr]>,
}

/// How many changed hosts an amendment may hold before the snapshot is built whole again:
/// an eighth of the rules (at least 64), so the whole builds stay a small share of the work.
fn most_amended(rules: usize) -> usize {
    (rules / 8).max(64)
}

/// Whether `rule` is suspended: its host lies in a network protected (since a reload).
fn suspended(protected: &[Cidr], rule: &Rule) -> bool {
    protected.iter().any(|c| c.contains(rule.key.host))
}

impl Daemon {
    fn capture_options(&self) -> CaptureOptions {
        let c = self.settings().config;
        CaptureOptions {
            flows: (c.max_flows > 0)
                .then(|| FlowTable::new(self.flow_budget.clone(), c.flow_idle())),
            budget: c.flow_rst_budget,
            egress: Arc::clone(&self.egress),
        }
    }

    fn protected(&self) -> Arc<[Cidr]> {
        Arc::clone(
            &self
                .settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .protected,
        )
    }

    /// The snapshot of the rules a capture on `iface` applies, built whole; a rule whose host
    /// is protected (since a reload) is suspended.
    fn matcher(&self, table: &RuleTable, iface: &str) -> Arc<Matcher> {
        let protected = self.protected();
        Arc::new(
            table
                .matcher_without(Some(iface), |r| suspended(&protected, r))
                .with_protected(Arc::clone(&protected)),
        )
    }

    /// The snapshot for a capture on `iface` after the hosts `changes` names changed (`None`:
    /// any may have): an amendment of the interface's layer while few hosts changed since it
    /// was built, otherwise a whole one that becomes the layer.
    fn capture_snapshot(
        &self,
        table: &RuleTable,
        layers: &mut BTreeMap<String, Layer>,
        iface: &str,
        changes: Option<&[IpAddr]>,
    ) -> Arc<Matcher> {
        let protected = self.protected();
        if let (Some(layer), Some(hosts)) = (layers.get_mut(iface), changes) {
            layer.changed.extend(hosts.iter().copied());
            if Arc::ptr_eq(&layer.protected, &protected)
                && layer.changed.len() <= most_amended(table.len())
            {
                let rules = table.rules_of(&layer.changed, |r| {
                    r.sniff_if == iface && !suspended(&protected, r)
                });
                return Arc::new(Matcher::amend(&layer.base, &layer.changed, rules));
            }
        }
        let base = self.matcher(table, iface);
        let layer = Layer {
            base: Arc::clone(&base),
            changed: foldhash::HashSet::default(),
            protected,
        };
        layers.insert(iface.to_owned(), layer);
        base
    }

    /// Opens a capture on `iface` unless one runs (a capture whose thread ended, e.g. when its
    /// interface went down, is replaced). The registry is not locked while libpcap opens it
    /// (tens of milliseconds); requests meanwhile go on.
    pub(super) fn ensure_capture(&self, iface: &str) -> Result<(), CaptureError> {
        let running = |r: &Registry| {
            r.captures
                .get(iface)
                .is_some_and(|o| o.capture.is_running())
        };
        if running(&self.lock()) {
            return Ok(());
        }
        let _opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if running(&self.lock()) {
            return Ok(());
        }
        let capture = self.sensor.open_capture(
            iface,
            Arc::new(Matcher::default()),
            self.capture_options(),
        )?;
        let since = self.clock.now();
        let mut registry = self.lock();
        capture.update(self.matcher(&registry.table, iface));
        let old = registry
            .captures
            .insert(iface.to_owned(), Open { capture, since });
        drop(registry);
        drop(old);
        Ok(())
    }

    /// Gives every capture the snapshot of its rules, and takes out the captures that no rule
    /// needs and that are not tracked; the caller drops them once the lock is released.
    pub(super) fn sync_captures(&self, registry: &mut Registry) -> Vec<Open> {
        let needed = registry.table.sniff_interfaces();
        let unneeded: Vec<String> = registry
            .captures
            .keys()
            .filter(|name| !needed.contains(*name) && !registry.tracked.contains(*name))
            .cloned()
            .collect();
        let closed = unneeded
            .iter()
            .filter_map(|name| registry.captures.remove(name))
            .collect();
        let changes = registry.table.take_changes();
        let Registry {
            table,
            captures,
            layers,
            ..
        } = registry;
        layers.retain(|name, _| captures.contains_key(name));
        for (name, open) in captures.iter() {
            let snapshot = self.capture_snapshot(table, layers, name, changes.as_deref());
            open.capture.update(snapshot);
        }
        closed
    }

    /// Brings the captures in line with the interfaces as `links` shows them: tracking starts
    /// on each interface that tracking wants (an automatic sniff port that appeared or came up,
    /// a listed or remembered one that is back) and on each a rule names that is up again;
    /// it stops on those it no longer wants (down, gone, given an address), unless a rule
    /// names them.
    pub(super) fn track_interfaces(&self, links: &Links) {
        let track = self.settings().config.track;
        let (to_open, closed) = {
            let mut registry = self.lock();
            let tracked = interfaces::tracked(&track, &registry.remembered, links);
            for name in tracked.difference(&registry.tracked) {
                tracing::info!(event = "tracking started", iface = %name, "tracking {name}: its connections are known from now on");
            }
            for name in registry.tracked.difference(&tracked) {
                tracing::info!(event = "tracking stopped", iface = %name, "no longer tracking {name} (down, gone, or it has an address of its own now)");
            }
            registry.tracked = tracked;
            let up = |name: &String| links.get(name).is_some_and(|l| l.up);
            let needed = registry.table.sniff_interfaces();
            let wanted: BTreeSet<String> = registry
                .tracked
                .iter()
                .chain(needed.iter().filter(|n| up(n)))
                .cloned()
                .collect();
            let to_open: Vec<String> = wanted
                .into_iter()
                .filter(|n| {
                    registry
                        .captures
                        .get(n)
                        .is_none_or(|o| !o.capture.is_running())
                })
                .collect();
            registry.open_failed.retain(|n, _| to_open.contains(n));
            let to_open: Vec<String> = to_open
                .into_iter()
                .filter(|n| registry.open_failed.get(n) != links.get(n))
                .collect();
            (to_open, self.sync_captures(&mut registry))
        };
        drop(closed);
        for name in to_open {
            match self.ensure_capture(&name) {
                Ok(()) => {
                    self.lock().open_failed.remove(&name);
                }
                Err(e) => {
                    let link = links.get(&name).cloned().unwrap_or_default();
                    self.lock().open_failed.insert(name.clone(), link);
                    tracing::error!(error = %e, iface = %name, "cannot capture {name}; trying again once it changes (comes up again, is recreated)");
                }
            }
        }
    }

    /// Remembers `iface` as named by a rule, so it stays tracked and a restart tracks it again.
    pub(super) fn remember(&self, iface: &str) {
        let mut registry = self.lock();
        if !registry.remembered.insert(iface.to_owned()) {
            return;
        }
        let track = self.settings().config.track;
        if track != crate::config::Track::List(Vec::new()) {
            registry.tracked.insert(iface.to_owned());
        }
        if let Some(file) = &self.tracked_file {
            if let Err(e) = file.save(&registry.remembered) {
                tracing::error!(path = %file.path().display(), error = %e, "cannot save the tracked interfaces; a restart tracks {iface} only once a rule names it");
            }
        }
    }

    /// Stops every capture (for shutdown).
    pub fn stop_captures(&self) {
        let captures = std::mem::take(&mut self.lock().captures);
        drop(captures);
    }
}
