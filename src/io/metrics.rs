//! Prometheus metrics as a text file for node_exporter's textfile collector.
use crate::proto::StatsView;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The stats in the Prometheus text exposition format.
pub fn render(s: &StatsView) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(
            out,
            "# HELP tcpreset_{name} {help}\n# TYPE tcpreset_{name} {kind}"
        );
        for (labels, value) in samples {
            let _ = writeln!(out, "tcpreset_{name}{labels} {value}");
        }
    };
    let daemon_wide = [
        (
            "uptime_seconds",
            "gauge",
            "Seconds since tcpresetd started.",
            s.uptime_secs,
        ),
        (
            "rules_active",
            "gauge",
            "Reset rules alive.",
            s.rules_active as f64,
        ),
        (
            "rsts_sent_total",
            "counter",
            "RST segments sent.",
            s.rsts_sent as f64,
        ),
        (
            "probes_sent_total",
            "counter",
            "Probes sent to silent flows.",
            s.probes_sent as f64,
        ),
        (
            "connection_ends_reset_total",
            "counter",
            "Connection ends that received a RST.",
            s.connection_ends_reset as f64,
        ),
    ];
    for (name, kind, help, value) in daemon_wide {
        metric(name, kind, help, &[(String::new(), value)]);
    }
    let per_iface = |f: fn(&crate::proto::CaptureView) -> u64| -> Vec<(String, f64)> {
        s.interfaces
            .iter()
            .map(|i| (format!("{{iface=\"{}\"}}", i.iface), f(i) as f64))
            .collect()
    };
    type PerIface = fn(&crate::proto::CaptureView) -> u64;
    let iface_metrics: [(&str, &str, &str, PerIface); 6] = [
        (
            "capture_tracked",
            "gauge",
            "1 if the interface is captured without a rule (tracked), 0 if only for rules.",
            |i| u64::from(i.tracked),
        ),
        (
            "capture_received_total",
            "counter",
            "Frames libpcap received.",
            |i| i.pcap_received,
        ),
        (
            "capture_dropped_total",
            "counter",
            "Frames the kernel dropped (buffer full).",
            |i| i.pcap_dropped,
        ),
        (
            "capture_if_dropped_total",
            "counter",
            "Frames the interface dropped.",
            |i| i.pcap_if_dropped,
        ),
        ("flows_tracked", "gauge", "Open TCP flows tracked.", |i| {
            i.flows
        }),
        (
            "inject_errors_total",
            "counter",
            "Segments the kernel refused to send.",
            |i| i.inject_errors,
        ),
    ];
    for (name, kind, help, value) in iface_metrics {
        metric(name, kind, help, &per_iface(value));
    }
    let per_reset_if = |f: fn(&crate::proto::ResetIfaceView) -> f64| -> Vec<(String, f64)> {
        s.reset_interfaces
            .iter()
            .map(|r| (format!("{{reset_if=\"{}\"}}", r.iface), f(r)))
            .collect()
    };
    metric(
        "reset_interface_ready",
        "gauge",
        "1 if RSTs can go out of the reset interface (up, carrier, an address), else 0.",
        &per_reset_if(|r| f64::from(u8::from(r.state == "ready"))),
    );
    metric(
        "reset_interface_send_failures_total",
        "counter",
        "Segments that could not be sent through the reset interface.",
        &per_reset_if(|r| r.send_failures as f64),
    );
    let c = &s.caps;
    let caps = [
        ("rate_limited", c.rate_limited),
        ("over_budget", c.over_budget),
        ("protected_skipped", c.protected_skipped),
        ("refused_max_rules", c.refused_max_rules),
        ("refused_max_seconds", c.refused_max_seconds),
        ("refused_protected", c.refused_protected),
        ("refused_unauthorized", c.refused_unauthorized),
        ("refused_interface", c.refused_interface),
    ]
    .map(|(cap, v)| (format!("{{cap=\"{cap}\"}}"), v as f64));
    metric(
        "caps_hit_total",
        "counter",
        "Times a safety rail bit.",
        &caps,
    );
    out
}

/// Writes `text` to `path` through a temporary file and a rename (the collector never reads a
/// half-written file).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("prom.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaptureView;

    #[test]
    fn renders_valid_exposition_lines() {
        let mut s = StatsView {
            rules_active: 2,
            rsts_sent: 7,
            ..StatsView::default()
        };
        s.interfaces.push(CaptureView {
            iface: "eth1".into(),
            pcap_dropped: 3,
            ..CaptureView::default()
        });
        s.caps.rate_limited = 5;
        s.reset_interfaces.push(crate::proto::ResetIfaceView {
            iface: "eth0".into(),
            state: "down".into(),
            since_unix: 1.0,
            send_failures: 4,
        });
        let text = render(&s);
        assert!(text.contains("tcpreset_reset_interface_ready{reset_if=\"eth0\"} 0\n"));
        assert!(
            text.contains("tcpreset_reset_interface_send_failures_total{reset_if=\"eth0\"} 4\n")
        );
        assert!(text.contains("tcpreset_rules_active 2\n"));
        assert!(text.contains("tcpreset_rsts_sent_total 7\n"));
        assert!(text.contains("tcpreset_capture_dropped_total{iface=\"eth1\"} 3\n"));
        assert!(text.contains("tcpreset_capture_tracked{iface=\"eth1\"} 0\n"));
        assert!(text.contains("tcpreset_caps_hit_total{cap=\"rate_limited\"} 5\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("tcpreset_"), "{line}");
            value.parse::<f64>().unwrap();
        }
    }
}
