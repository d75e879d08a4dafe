//! The seam between the daemon's decisions and the host: a [`Sensor`] lists the interfaces,
//! prepares the reset path and opens captures. [`HostSensor`] does it with syscalls; tests put a
//! fake in its place and run the control server without root.
use super::capture::{self, CaptureError, CaptureHandle, CaptureOptions, CaptureStats};
use super::iface;
use super::inject::{InjectError, Injector};
use crate::interfaces::{IfaceError, Links};
use crate::rules::Matcher;
use std::sync::Arc;

/// What the daemon asks of the machine it runs on.
pub trait Sensor: Send + Sync {
    /// Every interface now: index, flags, addresses.
    fn links(&self) -> Result<Links, IfaceError>;
    /// Opens what sending RSTs through `reset_if` needs, so a problem (permissions) is told at
    /// registration rather than at the first RST.
    fn prepare_reset(&self, reset_if: &str) -> Result<(), InjectError>;
    /// Starts capturing on `iface` with the rules of `matcher`.
    fn open_capture(
        &self,
        iface: &str,
        matcher: Arc<Matcher>,
        options: CaptureOptions,
    ) -> Result<Box<dyn RunningCapture>, CaptureError>;
}

/// A capture that runs until it is dropped.
pub trait RunningCapture: Send {
    /// Installs a new rule snapshot.
    fn update(&self, matcher: Arc<Matcher>);
    /// Its counters, as the capture keeps them.
    fn stats(&self) -> &CaptureStats;
    /// Whether it still captures.
    fn is_running(&self) -> bool;
}

impl RunningCapture for CaptureHandle {
    fn update(&self, matcher: Arc<Matcher>) {
        CaptureHandle::update(self, matcher);
    }

    fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    fn is_running(&self) -> bool {
        CaptureHandle::is_running(self)
    }
}

/// This machine: `getifaddrs`, raw sockets, libpcap.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostSensor;

impl Sensor for HostSensor {
    fn links(&self) -> Result<Links, IfaceError> {
        iface::read()
    }

    fn prepare_reset(&self, reset_if: &str) -> Result<(), InjectError> {
        Injector::new().prepare(reset_if)
    }

    fn open_capture(
        &self,
        iface: &str,
        matcher: Arc<Matcher>,
        options: CaptureOptions,
    ) -> Result<Box<dyn RunningCapture>, CaptureError> {
        Ok(Box::new(capture::start(iface, matcher, options)?))
    }
}
