//! Replay files: read a capture with libpcap, write the RSTs as Ethernet frames to a pcap file.
use super::mapped::Contents;
use super::savefile::Reader;
use crate::flows::FlowTable;
use crate::pipeline::Counters;
use crate::replay::{parse_rules, Replayer, RulesError};
use crate::time::Instant;
use crate::wire::{LinkType, RST_V6_LEN};
use pcap::{Capture, Linktype, Packet, PacketHeader};
use std::path::Path;

/// What stopped a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading rules file {path}")]
    ReadRules {
        path: String,
        source: std::io::Error,
    },
    #[error("rules file {path}")]
    Rules { path: String, source: RulesError },
    #[error("opening capture {path}")]
    Open { path: String, source: pcap::Error },
    #[error("opening capture {path}")]
    OpenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("capture {path} has link type {linktype}, which replay does not read (Ethernet, raw IP, Linux cooked, BSD loopback)")]
    LinkType { path: String, linktype: i32 },
    #[error("reading capture {path}")]
    Read { path: String, source: pcap::Error },
    #[error("reading capture {path}")]
    ReadFile {
        path: String,
        source: super::savefile::SavefileError,
    },
    #[error("writing {path}")]
    Write { path: String, source: pcap::Error },
    #[error("--inject-to {output} is the same file as {input} ({what}): writing it would destroy it; pass another output file")]
    SameFile {
        output: String,
        what: &'static str,
        input: String,
    },
}

/// Refuses an output that is one of the inputs (the same file by device and inode, whatever
/// the path says: a link, `./`, a symlink).
fn check_output(input: &Path, rules: &Path, output: &Path) -> Result<(), ReplayError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for (path, what) in [
        (input, "the capture --replay reads"),
        (rules, "the --rules file"),
    ] {
        let same =
            std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == (out.dev(), out.ino()));
        if same {
            return Err(ReplayError::SameFile {
                output: output.display().to_string(),
                what,
                input: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Totals of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub counters: Counters,
    pub rsts: u64,
}

/// Replays `input` under the rules in `rules`, writing RST frames (and, with `flows`, the
/// probes of silent flows) to `output`.
pub fn run(
    input: &Path,
    rules: &Path,
    output: &Path,
    flows: Option<FlowTable>,
) -> Result<Summary, ReplayError> {
    check_output(input, rules, output)?;
    let name = |p: &Path| p.display().to_string();
    let text = Contents::of(rules).map_err(|source| ReplayError::ReadRules {
        path: name(rules),
        source,
    })?;
    let rules = parse_rules(text.bytes()).map_err(|source| ReplayError::Rules {
        path: name(rules),
        source,
    })?;
    drop(text);
    let open_err = |source| ReplayError::OpenFile {
        path: name(input),
        source,
    };
    // Classic pcap is read in blocks; anything else (pcapng) through libpcap.
    let (mut fast, mut cap) = match Reader::open(input).map_err(open_err)? {
        Some(r) => (Some(r), None),
        None => {
            let cap = Capture::from_file(input).map_err(|source| ReplayError::Open {
                path: name(input),
                source,
            })?;
            (None, Some(cap))
        }
    };
    let dlt = match (&fast, &cap) {
        (Some(r), _) => r.header().linktype as i32,
        (None, Some(c)) => c.get_datalink().0,
        (None, None) => unreachable!("one reader is open"),
    };
    let link = LinkType::from_linktype(dlt).ok_or(ReplayError::LinkType {
        path: name(input),
        linktype: dlt,
    })?;
    let write_err = |source| ReplayError::Write {
        path: name(output),
        source,
    };
    let mut save = Capture::dead(Linktype::ETHERNET)
        .map_err(write_err)?
        .savefile(output)
        .map_err(write_err)?;
    let mut replayer = Replayer::new(link, rules);
    if let Some(flows) = flows {
        replayer = replayer.with_flows(flows);
    }
    let mut rsts = 0u64;
    let mut buf = [0u8; 14 + RST_V6_LEN];
    let mut emit = |at: Instant, o: &crate::reset::Outgoing| {
        let n = o.forged.emit_frame(o.src_mac, o.dst_mac, &mut buf);
        let micros = at.as_micros();
        let header = PacketHeader {
            ts: libc::timeval {
                tv_sec: (micros / 1_000_000) as libc::time_t,
                tv_usec: (micros % 1_000_000) as libc::suseconds_t,
            },
            caplen: n as u32,
            len: n as u32,
        };
        save.write(&Packet::new(&header, &buf[..n]));
        rsts += 1;
    };
    if let Some(r) = &mut fast {
        while let Some((ts, frame)) = r.next_frame().map_err(|source| ReplayError::ReadFile {
            path: name(input),
            source,
        })? {
            replayer.on_frame(ts, frame, &mut emit);
        }
    }
    while let Some(cap) = &mut cap {
        match cap.next_packet() {
            Ok(p) => {
                let ts = Instant::from_timeval(p.header.ts.tv_sec, p.header.ts.tv_usec);
                replayer.on_frame(ts, p.data, &mut emit);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(source) => {
                return Err(ReplayError::Read {
                    path: name(input),
                    source,
                })
            }
        }
    }
    replayer.finish(&mut emit);
    save.flush().map_err(write_err)?;
    Ok(Summary {
        counters: replayer.counters(),
        rsts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.pcap");
        let rules = dir.path().join("rules.json");
        std::fs::write(&input, b"not even a capture").unwrap();
        std::fs::write(&rules, b"[]").unwrap();
        let linked = dir.path().join("linked.pcap");
        std::fs::hard_link(&input, &linked).unwrap();
        for (output, names) in [
            (
                dir.path().join(".").join("in.pcap"),
                "the capture --replay reads",
            ),
            (linked, "the capture --replay reads"),
            (rules.clone(), "the --rules file"),
        ] {
            let e = run(&input, &rules, &output, None).unwrap_err();
            assert!(matches!(e, ReplayError::SameFile { .. }), "{e}");
            assert!(e.to_string().contains(names), "{e}");
        }
        assert_eq!(std::fs::read(&input).unwrap(), b"not even a capture");
        assert_eq!(std::fs::read(&rules).unwrap(), b"[]");
    }
}
