//! Issue 3's capture point, live and short: a tcpreplay burst at full speed into the lab's hub
//! reaches the daemon's capture on the sniff interface whole, and `tcpreset stats` shows libpcap
//! counting every frame with no kernel drop. `scripts/bench-capture.sh` is the long version.
mod lab;

use lab::{require_root, scratch, Lab};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const FRAMES: u16 = 20_000;

/// `n` SYNs between hosts outside the lab (10.1.0.0/16 to 10.2.0.1:80): the flow table's
/// prefilter passes them, no rule matches them, so no RST is sent.
fn syn_burst(path: &std::path::Path, n: u16) {
    lab::write_syns(path, n, |i| {
        let [hi, lo] = i.to_be_bytes();
        tcpreset::wire::Forged {
            kind: tcpreset::wire::Kind::Probe,
            src: format!("10.1.{hi}.{lo}").parse().unwrap(),
            dst: "10.2.0.1".parse().unwrap(),
            src_port: 40_000,
            dst_port: 80,
            seq: 7 * u32::from(i),
            ack: None,
        }
    });
}

/// eth1's capture counters in `tcpreset stats --json`, once the capture runs.
fn eth1(lab: &Lab) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = lab.tcpreset(&["stats", "--json"]);
        assert!(out.status.success());
        let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(i) = stats["interfaces"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["iface"] == "eth1"))
        {
            return i.clone();
        }
        assert!(Instant::now() < deadline, "no eth1 capture: {stats:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(i: &Value, key: &str) -> u64 {
    i[key].as_u64().unwrap()
}

#[test]
fn a_full_speed_tcpreplay_burst_is_captured_whole_with_no_kernel_drop() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::up("capt");
    lab.start_daemon(&["--track", "eth1"]);
    let burst = scratch(&lab, "burst.pcap");
    syn_burst(&burst, FRAMES);
    let before = count(&eth1(&lab), "pcap_received");
    let replay = Command::new("ip")
        .args(["netns", "exec", &lab.ns("oth"), "tcpreplay", "--topspeed"])
        .args(["-i", "eth0"])
        .arg(&burst)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let said = String::from_utf8_lossy(&replay.stdout);
    assert!(
        said.contains(&format!("Successful packets:        {FRAMES}")),
        "{said}"
    );
    // The capture thread refreshes libpcap's counters every second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let i = loop {
        let i = eth1(&lab);
        if count(&i, "pcap_received") - before >= u64::from(FRAMES) || Instant::now() > deadline {
            break i;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        count(&i, "pcap_received") - before >= u64::from(FRAMES),
        "{i:#}\n{said}"
    );
    assert_eq!(count(&i, "pcap_dropped"), 0, "{i:#}\n{said}");
    assert_eq!(count(&i, "pcap_if_dropped"), 0, "{i:#}");
    assert!(count(&i, "frames") >= u64::from(FRAMES), "parsed: {i:#}");
    assert!(count(&i, "flows") >= u64::from(FRAMES), "tracked: {i:#}");
}
