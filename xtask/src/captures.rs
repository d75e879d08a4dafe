//! Writes a large synthetic capture and a rules file for the replay throughput benchmark
//! (`scripts/bench-replay.sh`): many concurrent TCP flows between many hosts, interleaved as on
//! a busy SPAN port, and rules for many hosts of which a few appear in the traffic.
//!
//! `cargo xtask captures OUT.pcap RULES.json [FLOWS] [PACKETS_PER_FLOW] [RULES] [MATCHING_HOSTS]`
//! (defaults: 100000 flows x 50 packets, 100000 rules, 1000 of them on hosts in the traffic); the
//! benchmarks run the release build, `target/release/xtask captures ...`.
use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// What to write.
#[derive(clap::Args)]
pub struct Spec {
    /// The capture (pcap, Ethernet).
    out: PathBuf,
    /// The rules, a JSON array for `tcpresetd --replay --rules`.
    rules_file: PathBuf,
    /// Concurrent TCP flows.
    #[arg(default_value_t = 100_000)]
    flows: u32,
    /// Packets of each flow (SYN, SYN-ACK, ACK, data, FIN).
    #[arg(default_value_t = 50)]
    per_flow: u32,
    /// Rules in the rules file.
    #[arg(default_value_t = 100_000)]
    rules: u32,
    /// Rules that name a client in the traffic.
    #[arg(default_value_t = 1000)]
    matching: u32,
}

/// Frame bytes kept per packet (Ethernet, IPv4, TCP); the payload is counted, not stored.
const CAPLEN: usize = 54;

fn client(i: u32) -> [u8; 4] {
    let n = 0x0a00_0000 + i;
    n.to_be_bytes()
}

fn server(i: u32) -> [u8; 4] {
    let n = 0xc0a8_0000 + (i % 4096);
    n.to_be_bytes()
}

/// Packet `k` of flow `f`: SYN, SYN-ACK, ACK, then data both ways, then a FIN.
fn frame(f: u32, k: u32, last: u32, buf: &mut [u8; CAPLEN]) -> u32 {
    let from_client = k == 0 || k == 2 || (k > 2 && k % 2 == 1) || k == last;
    let (src, dst) = if from_client {
        (client(f), server(f))
    } else {
        (server(f), client(f))
    };
    let (sport, dport) = if from_client {
        (10_000 + (f % 50_000) as u16, 443)
    } else {
        (443, 10_000 + (f % 50_000) as u16)
    };
    let payload: u32 = if k > 2 && k != last { 100 } else { 0 };
    let flags: u8 = match k {
        0 => 0x02,
        1 => 0x12,
        _ if k == last => 0x11,
        2 => 0x10,
        _ => 0x18,
    };
    let isn_c = f.wrapping_mul(2_654_435_761);
    let isn_s = f.wrapping_mul(40_503).wrapping_add(7);
    let data_before = k.saturating_sub(3) / 2 * 100;
    let (seq, ack) = if from_client {
        (
            isn_c.wrapping_add(1 + data_before),
            isn_s.wrapping_add(1 + data_before),
        )
    } else {
        (
            isn_s.wrapping_add(1 + data_before),
            isn_c.wrapping_add(1 + data_before + 100),
        )
    };
    buf[..14].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = 40 + payload as u16;
    buf[14..34].copy_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
        0,
        0,
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ]);
    buf[34..36].copy_from_slice(&sport.to_be_bytes());
    buf[36..38].copy_from_slice(&dport.to_be_bytes());
    buf[38..42].copy_from_slice(&seq.to_be_bytes());
    buf[42..46].copy_from_slice(&ack.to_be_bytes());
    buf[46..54].copy_from_slice(&[0x50, flags, 0x01, 0xf5, 0, 0, 0, 0]);
    14 + u32::from(total)
}

/// Writes the capture and the rules file.
pub fn write(spec: &Spec) -> Result<()> {
    let create = |path: &PathBuf| {
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
    };
    let Spec {
        flows,
        per_flow,
        rules,
        matching,
        ..
    } = *spec;
    let mut out = BufWriter::with_capacity(1 << 20, create(&spec.out)?);
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0])?;
    out.write_all(&(CAPLEN as u32).to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    let mut buf = [0u8; CAPLEN];
    let mut t: u64 = 1_700_000_000_000_000;
    for k in 0..per_flow {
        for f in 0..flows {
            let len = frame(f, k, per_flow - 1, &mut buf);
            out.write_all(&((t / 1_000_000) as u32).to_le_bytes())?;
            out.write_all(&((t % 1_000_000) as u32).to_le_bytes())?;
            out.write_all(&(CAPLEN as u32).to_le_bytes())?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(&buf)?;
            t += 1;
        }
    }
    out.flush()?;
    let mut r = BufWriter::new(create(&spec.rules_file)?);
    writeln!(r, "[")?;
    for i in 0..rules {
        // The first `matching` rules name clients in the traffic (spread over it), the rest
        // hosts that never appear.
        let host = if i < matching {
            let c = client(i * (flows / matching.max(1)));
            format!("{}.{}.{}.{}", c[0], c[1], c[2], c[3])
        } else {
            let n = 0xac10_0000u32 + i;
            let c = n.to_be_bytes();
            format!("{}.{}.{}.{}", c[0], c[1], c[2], c[3])
        };
        let comma = if i + 1 < rules { "," } else { "" };
        writeln!(
            r,
            r#"{{"engid":"bench","host":"{host}","seconds":86400}}{comma}"#
        )?;
    }
    writeln!(r, "]")?;
    r.flush()?;
    eprintln!(
        "{} packets over {flows} flows, {rules} rules ({matching} on hosts in the traffic)",
        u64::from(flows) * u64::from(per_flow)
    );
    Ok(())
}
