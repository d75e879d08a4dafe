//! Live capture: one named thread per sniff interface runs libpcap, the [`Pipeline`] and injection.
//!
//! The thread owns its pipeline and its injector, so the hot path (read, parse, match, build,
//! send) takes no lock. Rule changes arrive as fresh [`Matcher`] snapshots over a channel that
//! the thread checks between batches; dropping the [`CaptureHandle`] ends the thread.
//!
//! In immediate mode libpcap (1.10) rings with `TPACKET_V2`, frame by frame (`TPACKET_V3` hands
//! over blocks on a timer). Its received/dropped counters are the kernel's `PACKET_STATISTICS`
//! (`tp_packets`, every frame the filter passed; `tp_drops`, those the full ring lost), which
//! the thread reads every second into 64-bit totals for `tcpreset stats`.
mod supervise;

use super::inject::Injector;
use crate::filter;
use crate::flows::FlowTable;
use crate::health::SendFailure;
use crate::pipeline::Pipeline;
use crate::ratelimit::TokenBucket;
use crate::reset::Outgoing;
use crate::rules::{Matcher, ResetRecord};
use crate::time::Instant;
use crate::wire::{Kind, LinkType};
use pcap::{Active, Capture};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes of each frame we keep: enough for two VLAN tags, IPv6 with extension headers and TCP.
pub const SNAPLEN: i32 = 256;
/// Kernel ring buffer per capture.
pub const BUFFER_BYTES: i32 = 16 << 20;
/// Longest wait before the thread looks at its channel again.
const IDLE_WAKEUP: Duration = Duration::from_millis(50);
/// How often libpcap's counters are read into [`CaptureStats`].
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Frames handled before the thread checks for new rules and due RSTs.
const BATCH: usize = 256;

/// A capture could not start.
#[derive(Debug, thiserror::Error)]
#[error("pcap {call} on sniff interface '{iface}': {message}{hint}")]
pub struct CaptureError {
    pub call: &'static str,
    pub iface: String,
    pub message: String,
    hint: &'static str,
}

impl CaptureError {
    /// The failure of `call` on `iface`, with the fix when it is a permission problem.
    pub fn new(call: &'static str, iface: &str, e: impl std::fmt::Display) -> Self {
        let message = e.to_string();
        let hint = if message.contains("ermission") || message.contains("not permitted") {
            "; run tcpresetd as root or give it the capabilities (setcap cap_net_raw,cap_net_admin+ep)"
        } else {
            ""
        };
        CaptureError {
            call,
            iface: iface.to_owned(),
            message,
            hint,
        }
    }
}

/// What every capture thread shares with the daemon: the global RST rate cap, and the state of
/// the reset interfaces.
#[derive(Debug)]
pub struct Egress {
    pub rate: Mutex<TokenBucket>,
    /// RSTs not sent because of the rate cap.
    pub rate_limited: AtomicU64,
    /// Raised when a reset interface comes back: each thread then reopens its raw sockets.
    pub reset_epoch: AtomicU64,
    /// Segments (RSTs and probes) that could not be sent, per reset interface.
    pub send_failures: Mutex<BTreeMap<String, u64>>,
}

impl Egress {
    pub fn new(rst_rate: u32) -> Self {
        Egress {
            rate: Mutex::new(TokenBucket::new(rst_rate, Instant::now())),
            rate_limited: AtomicU64::new(0),
            reset_epoch: AtomicU64::new(0),
            send_failures: Mutex::default(),
        }
    }

    /// Counts a segment that could not go out of `reset_if`.
    fn count_failure(&self, reset_if: &str) {
        let mut failures = self.send_failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get_mut(reset_if) {
            Some(n) => *n += 1,
            None => {
                failures.insert(reset_if.to_owned(), 1);
            }
        }
    }

    /// Segments that could not go out of `reset_if` so far.
    pub fn failures(&self, reset_if: &str) -> u64 {
        let failures = self.send_failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.get(reset_if).copied().unwrap_or(0)
    }
}

/// How a capture thread runs.
#[derive(Debug)]
pub struct CaptureOptions {
    /// Open-flow tracking, if on.
    pub flows: Option<FlowTable>,
    /// RSTs toward one connection end, at most.
    pub budget: u32,
    pub egress: Arc<Egress>,
}

/// Counters of one capture, readable from other threads.
#[derive(Debug, Default)]
pub struct CaptureStats {
    pub frames: AtomicU64,
    pub matched: AtomicU64,
    pub rsts_sent: AtomicU64,
    pub probes_sent: AtomicU64,
    pub inject_errors: AtomicU64,
    /// Flows tracked, and flows not tracked because the table was full.
    pub flows: AtomicU64,
    pub flows_refused: AtomicU64,
    pub protected_skipped: AtomicU64,
    pub over_budget: AtomicU64,
    /// libpcap's counters: received, dropped by the kernel, dropped by the interface.
    pub pcap_received: AtomicU64,
    pub pcap_dropped: AtomicU64,
    pub pcap_if_dropped: AtomicU64,
    /// Times the capture loop panicked and was entered again.
    pub restarts: AtomicU64,
}

/// libpcap's counters (received, dropped, if_dropped) summed into 64 bits: `pcap_stats` gives
/// 32-bit counters, which wrap after 4.3 billion frames (about 70 minutes at 1 Mpps).
#[derive(Debug, Default)]
struct PcapTotals {
    last: [u32; 3],
    totals: [u64; 3],
}

impl PcapTotals {
    fn update(&mut self, now: [u32; 3]) {
        for ((total, last), now) in self.totals.iter_mut().zip(&mut self.last).zip(now) {
            *total += u64::from(now.wrapping_sub(*last));
            *last = now;
        }
    }
}

/// A running capture thread.
#[derive(Debug)]
pub struct CaptureHandle {
    pub iface: String,
    pub stats: Arc<CaptureStats>,
    rules: Option<Sender<Arc<Matcher>>>,
    /// Written to after each update, so the thread wakes from `poll` at once.
    waker: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl CaptureHandle {
    /// Hands the thread a new rule snapshot and wakes it.
    pub fn update(&self, matcher: Arc<Matcher>) {
        if let Some(tx) = &self.rules {
            let _ = tx.send(matcher);
            let _ = (&self.waker).write(&[1]);
        }
    }

    /// Whether the thread still captures (it ends when libpcap fails, e.g. the interface went).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for CaptureHandle {
    fn drop(&mut self) {
        self.rules = None;
        let _ = (&self.waker).write(&[0]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens `iface` (promiscuous, immediate mode, TCP only) and starts its thread; with `flows`
/// the thread tracks open flows so new rules reach silent connections.
pub fn start(
    iface: &str,
    matcher: Arc<Matcher>,
    options: CaptureOptions,
) -> Result<CaptureHandle, CaptureError> {
    let cap = Capture::from_device(iface)
        .map_err(|e| CaptureError::new("pcap_create", iface, e))?
        .promisc(true)
        .immediate_mode(true)
        .snaplen(SNAPLEN)
        .buffer_size(BUFFER_BYTES)
        .open()
        .map_err(|e| CaptureError::new("pcap_activate", iface, e))?;
    let mut cap = cap
        .setnonblock()
        .map_err(|e| CaptureError::new("pcap_setnonblock", iface, e))?;
    cap.filter(filter::ALL_TCP, true)
        .map_err(|e| CaptureError::new("pcap_setfilter", iface, e))?;
    let dlt = cap.get_datalink();
    let link = LinkType::from_linktype(dlt.0).ok_or_else(|| {
        CaptureError::new(
            "pcap_datalink",
            iface,
            format!(
                "link type {} is not supported (Ethernet, raw IP and Linux cooked are)",
                dlt.0
            ),
        )
    })?;
    let stats = Arc::new(CaptureStats::default());
    let (tx, rx) = mpsc::channel();
    let (waker, wakeup) =
        UnixStream::pair().map_err(|e| CaptureError::new("socketpair", iface, e))?;
    for s in [&waker, &wakeup] {
        s.set_nonblocking(true)
            .map_err(|e| CaptureError::new("fcntl(O_NONBLOCK)", iface, e))?;
    }
    let mut pipeline = Pipeline::new(link, matcher).with_budget(options.budget);
    if let Some(flows) = options.flows {
        pipeline = pipeline.with_flows(flows);
    }
    let egress = options.egress;
    let thread = {
        let stats = Arc::clone(&stats);
        let name = iface.to_owned();
        std::thread::Builder::new()
            .name(format!("capture-{iface}"))
            .spawn(move || {
                let sinks = Sinks {
                    stats: &stats,
                    egress: &egress,
                    iface: &name,
                };
                let (mut cap, mut pipeline) = (cap, pipeline);
                let updates = Updates { rx, wakeup };
                supervise::supervise(&name, &stats.restarts, || {
                    run(&mut cap, &mut pipeline, &updates, sinks, &name)
                })
            })
            .map_err(|e| CaptureError::new("thread spawn", iface, e))?
    };
    Ok(CaptureHandle {
        iface: iface.to_owned(),
        stats,
        rules: Some(tx),
        waker,
        thread: Some(thread),
    })
}

/// Rule snapshots for the thread, and the socket that wakes it when one arrives.
struct Updates {
    rx: Receiver<Arc<Matcher>>,
    wakeup: UnixStream,
}

/// Where a capture thread's sends are counted, and the interface it sniffs (for audit lines).
#[derive(Clone, Copy)]
struct Sinks<'a> {
    stats: &'a CaptureStats,
    egress: &'a Egress,
    iface: &'a str,
}

fn run(
    cap: &mut Capture<Active>,
    pipeline: &mut Pipeline,
    updates: &Updates,
    sinks: Sinks<'_>,
    iface: &str,
) {
    let stats = sinks.stats;
    tracing::info!(iface, "capture started");
    let mut installed = String::new();
    let tracks = pipeline.tracks_flows();
    prefilter(cap, pipeline.matcher(), tracks, &mut installed, iface);
    let mut injector = Injector::new();
    let mut out: Vec<Outgoing> = Vec::with_capacity(64);
    let mut last_stats = Instant::now();
    let mut pcap_totals = PcapTotals::default();
    let mut reset_epoch = sinks.egress.reset_epoch.load(Ordering::Relaxed);
    loop {
        let _ = (&updates.wakeup).read(&mut [0u8; 64]);
        let epoch = sinks.egress.reset_epoch.load(Ordering::Relaxed);
        if epoch != reset_epoch {
            reset_epoch = epoch;
            injector.reopen_all();
        }
        loop {
            match updates.rx.try_recv() {
                Ok(m) => {
                    // The filter first: the answers to the probes must get through.
                    prefilter(cap, &m, tracks, &mut installed, iface);
                    pipeline.set_matcher(m, Instant::now(), &mut out);
                    inject(&mut injector, &mut out, sinks);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    tracing::info!(iface, "capture stopped");
                    return;
                }
            }
        }
        let mut handled = 0;
        while handled < BATCH {
            match cap.next_packet() {
                Ok(p) => {
                    let ts = Instant::from_timeval(p.header.ts.tv_sec, p.header.ts.tv_usec);
                    pipeline.on_frame(p.data, ts, &mut out);
                    handled += 1;
                }
                Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    tracing::error!(iface, error = %e, "pcap_next_ex failed; capture stopped");
                    return;
                }
            }
            inject(&mut injector, &mut out, sinks);
        }
        let now = Instant::now();
        pipeline.poll(now, &mut out);
        inject(&mut injector, &mut out, sinks);
        let c = pipeline.counters();
        stats.frames.store(c.frames, Ordering::Relaxed);
        stats.matched.store(c.matched, Ordering::Relaxed);
        stats
            .protected_skipped
            .store(c.protected_skipped, Ordering::Relaxed);
        stats.over_budget.store(c.over_budget, Ordering::Relaxed);
        if let Some((flows, refused)) = pipeline.flow_counts() {
            stats.flows.store(flows as u64, Ordering::Relaxed);
            stats.flows_refused.store(refused, Ordering::Relaxed);
        }
        if now.saturating_since(last_stats) >= STATS_EVERY {
            last_stats = now;
            if let Ok(s) = cap.stats() {
                pcap_totals.update([s.received, s.dropped, s.if_dropped]);
                let [received, dropped, if_dropped] = pcap_totals.totals;
                stats.pcap_received.store(received, Ordering::Relaxed);
                stats.pcap_dropped.store(dropped, Ordering::Relaxed);
                stats.pcap_if_dropped.store(if_dropped, Ordering::Relaxed);
            }
        }
        if handled < BATCH {
            let wait = pipeline
                .next_deadline()
                .map_or(IDLE_WAKEUP, |d| d.saturating_since(now).min(IDLE_WAKEUP));
            wait_readable(cap, &updates.wakeup, wait);
        }
    }
}

fn inject(injector: &mut Injector, out: &mut Vec<Outgoing>, sinks: Sinks<'_>) {
    let stats = sinks.stats;
    for o in out.drain(..) {
        let is_rst = o.forged.kind == Kind::Rst;
        if is_rst {
            let mut bucket = sinks.egress.rate.lock().unwrap_or_else(|p| p.into_inner());
            if !bucket.take(Instant::now()) {
                let n = sinks.egress.rate_limited.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(limited = n + 1, "RST rate cap reached: RST not sent");
                }
                continue;
            }
        }
        match injector.send(&o.reset_if, &o.forged) {
            Ok(()) if !is_rst => {
                stats.probes_sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {
                o.stats.rsts_sent.fetch_add(1, Ordering::Relaxed);
                stats.rsts_sent.fetch_add(1, Ordering::Relaxed);
                if o.first {
                    let f = &o.forged;
                    let record = ResetRecord {
                        at: Instant::now(),
                        end: (f.dst, f.dst_port),
                        peer: (f.src, f.src_port),
                    };
                    audit_reset(&o, &record, sinks.iface);
                    o.stats.record_reset(record);
                }
            }
            Err(e) => {
                let n = stats.inject_errors.fetch_add(1, Ordering::Relaxed);
                sinks.egress.count_failure(&o.reset_if);
                match e.failure() {
                    // The interface watch reports these once per transition.
                    SendFailure::StaleSocket | SendFailure::Unusable => {
                        tracing::debug!(error = %e, errors = n + 1, "RST not sent")
                    }
                    SendFailure::Other if n.is_power_of_two() || n == 0 => {
                        tracing::error!(error = %e, errors = n + 1, "RST not sent")
                    }
                    SendFailure::Other => {}
                }
            }
        }
    }
}

/// The audit line of a connection end's first RST: what SIEMs join on (the Community ID, the
/// 4-tuple, the VLAN tags seen), the interfaces and the rule. `peer` is the source of the RST
/// (as forged), `end` its destination.
fn audit_reset(o: &Outgoing, record: &ResetRecord, sniff_if: &str) {
    let [vlan, inner_vlan] = o.vlans.map(|v| (v != 0).then_some(v));
    tracing::info!(
        event = "connection reset",
        engid = %o.stats.engid,
        community_id = crate::community_id::tcp_v1(record.peer, record.end).as_deref(),
        peer_ip = %record.peer.0,
        peer_port = record.peer.1,
        end_ip = %record.end.0,
        end_port = record.end.1,
        vlan,
        inner_vlan,
        sniff_if,
        reset_if = %o.reset_if,
        end = %format_args!("{}:{}", record.end.0, record.end.1),
        peer = %format_args!("{}:{}", record.peer.0, record.peer.1),
        "connection reset"
    );
}

/// Installs the kernel filter for the rules in force, unless it is already installed; a filter
/// the kernel refuses falls back to all TCP.
fn prefilter(
    cap: &mut Capture<Active>,
    matcher: &Matcher,
    tracks_flows: bool,
    installed: &mut String,
    iface: &str,
) {
    // More hosts than a filter names: all TCP, without listing (and sorting) them all.
    let wanted = if matcher.host_count() > filter::MAX_HOSTS {
        filter::ALL_TCP.to_owned()
    } else {
        filter::for_rules(&matcher.host_ports(), tracks_flows)
    };
    if *installed == wanted {
        return;
    }
    let result = cap.filter(&wanted, true);
    *installed = match result {
        Ok(()) => wanted,
        Err(e) => {
            tracing::warn!(iface, error = %e, "prefilter refused; capturing all TCP");
            let _ = cap.filter(filter::ALL_TCP, true);
            filter::ALL_TCP.to_owned()
        }
    };
    tracing::debug!(iface, filter = %installed, "prefilter installed");
}

/// Waits until a frame arrives, an update wakes us, or `wait` passes.
fn wait_readable(cap: &Capture<Active>, wakeup: &UnixStream, wait: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // SAFETY: the capture outlives this call, so its descriptor stays open.
    let fd = unsafe { BorrowedFd::borrow_raw(cap.as_raw_fd()) };
    let mut fds = [
        PollFd::new(fd, PollFlags::POLLIN),
        PollFd::new(wakeup.as_fd(), PollFlags::POLLIN),
    ];
    let ms = u16::try_from(wait.as_millis().max(1)).unwrap_or(u16::MAX);
    let _ = poll(&mut fds, PollTimeout::from(ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_counters_keep_counting_past_32_bits() {
        let mut t = PcapTotals::default();
        t.update([10, 0, 0]);
        t.update([u32::MAX - 5, 3, 1]);
        assert_eq!(t.totals, [u64::from(u32::MAX) - 5, 3, 1]);
        t.update([4, 3, 1]); // received wrapped: 10 more frames
        assert_eq!(t.totals, [u64::from(u32::MAX) + 5, 3, 1]);
        t.update([4, 3, 1]);
        assert_eq!(t.totals, [u64::from(u32::MAX) + 5, 3, 1]);
    }
}
