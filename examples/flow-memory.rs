//! What the flow table costs: fills one [`FlowTable`] with a million flows learned from SYNs
//! (IPv4 or IPv6) under a daemon-wide [`FlowBudget`] of a million, and prints the resident
//! memory before and after and its peak (`/proc/self/status`), as BENCHMARKS.md records it.
//!
//!   cargo run --release --example flow-memory -- v4|v6 [FLOWS]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use tcpreset::flows::{FlowBudget, FlowTable};
use tcpreset::time::Instant;
use tcpreset::wire::{Flags, Segment, L2};

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .expect("a figure")
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let v6 = match args.first().map(String::as_str) {
        Some("v4") => false,
        Some("v6") => true,
        _ => {
            eprintln!("usage: flow-memory v4|v6 [FLOWS]");
            std::process::exit(2);
        }
    };
    let flows: u32 = args
        .get(1)
        .map_or(1_000_000, |n| n.parse().expect("a number"));
    let budget = FlowBudget::new(flows as usize);
    let mut table = FlowTable::new(budget.clone(), Duration::from_secs(86_400));
    let (before, _) = rss();
    let now = Instant::from_secs(1_000);
    for i in 0..flows {
        let (src, dst) = if v6 {
            let a = Ipv6Addr::from(0xfd00_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(i));
            (IpAddr::V6(a), IpAddr::V6("fd77::2".parse().unwrap()))
        } else {
            (
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)),
                IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)),
            )
        };
        let seg = Segment {
            l2: L2::default(),
            src,
            dst,
            src_port: 40_000,
            dst_port: 443,
            seq: i,
            ack: 0,
            flags: Flags::SYN,
            window: 64_240,
            payload_len: 0,
        };
        table.observe(&seg, now);
    }
    let (after, peak) = rss();
    assert_eq!(table.len(), flows as usize, "every flow tracked");
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{} {} flows: table {:.1} MB resident ({:.0} bytes/flow), process peak {:.1} MB, budget used {}",
        if v6 { "IPv6" } else { "IPv4" },
        flows,
        mb(after - before),
        (after - before) as f64 / f64::from(flows),
        mb(peak),
        budget.used()
    );
}
