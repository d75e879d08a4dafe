//! Which captures run: opened through the sensor when a rule or the configuration needs one
//! (never under the registry's lock), given each new rule snapshot, closed when nothing needs them.
use super::{Daemon, Registry};
use crate::flows::FlowTable;
use crate::io::capture::{CaptureError, CaptureOptions};
use crate::io::sensor::RunningCapture;
use crate::rules::{Matcher, RuleTable};
use std::sync::Arc;

impl Daemon {
    fn capture_options(&self) -> CaptureOptions {
        let c = self.settings().config;
        CaptureOptions {
            flows: (c.max_flows > 0).then(|| FlowTable::new(c.max_flows, c.flow_idle())),
            budget: c.flow_rst_budget,
            egress: Arc::clone(&self.egress),
        }
    }

    /// The snapshot of the rules a capture on `iface` applies; a rule whose host is protected
    /// (since a reload) is suspended.
    fn matcher(&self, table: &RuleTable, iface: &str) -> Arc<Matcher> {
        let protected = Arc::clone(
            &self
                .settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .protected,
        );
        let suspended = |r: &crate::rules::Rule| protected.iter().any(|c| c.contains(r.key.host));
        Arc::new(
            table
                .matcher_without(Some(iface), suspended)
                .with_protected(Arc::clone(&protected)),
        )
    }

    /// Opens a capture on `iface` unless one runs. The registry is not locked while libpcap
    /// opens it (tens of milliseconds); requests meanwhile go on.
    pub(super) fn ensure_capture(&self, iface: &str) -> Result<(), CaptureError> {
        if self.lock().captures.contains_key(iface) {
            return Ok(());
        }
        let _opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if self.lock().captures.contains_key(iface) {
            return Ok(());
        }
        let capture = self.sensor.open_capture(
            iface,
            Arc::new(Matcher::default()),
            self.capture_options(),
        )?;
        let mut registry = self.lock();
        capture.update(self.matcher(&registry.table, iface));
        registry.captures.insert(iface.to_owned(), capture);
        Ok(())
    }

    /// Gives every capture the snapshot of its rules, and takes out the captures that no rule
    /// needs and that are not tracked; the caller drops them once the lock is released.
    pub(super) fn sync_captures(&self, registry: &mut Registry) -> Vec<Box<dyn RunningCapture>> {
        let needed = registry.table.sniff_interfaces();
        let track = self.settings().config.track;
        let unneeded: Vec<String> = registry
            .captures
            .keys()
            .filter(|name| !needed.contains(*name) && !track.contains(*name))
            .cloned()
            .collect();
        let closed = unneeded
            .iter()
            .filter_map(|name| registry.captures.remove(name))
            .collect();
        for (name, capture) in &registry.captures {
            capture.update(self.matcher(&registry.table, name));
        }
        closed
    }

    /// Stops every capture (for shutdown).
    pub fn stop_captures(&self) {
        let captures = std::mem::take(&mut self.lock().captures);
        drop(captures);
    }
}
