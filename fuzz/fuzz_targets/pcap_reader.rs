//! Bytes → the pcap block reader, differentially against libpcap: a file the block reader
//! takes (it leaves other formats and versions to libpcap) gives the same frames, and ends
//! the same way (cleanly or with an error), as libpcap reading it; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::io::savefile::Reader;

/// Frames as (microseconds or `None` where the readings differ on purpose, bytes), and
/// whether the reading ended cleanly.
type Outcome = (Vec<(Option<u64>, Vec<u8>)>, bool);

fn ours(data: &[u8]) -> Option<Outcome> {
    let mut reader = Reader::new(data).ok()??;
    let mut frames = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some((ts, frame))) => frames.push((Some(ts.as_micros()), frame.to_vec())),
            Ok(None) => return Some((frames, true)),
            Err(_) => return Some((frames, false)),
        }
    }
}

fn libpcap(path: &std::path::Path) -> Option<Outcome> {
    let mut cap = pcap::Capture::from_file(path).ok()?;
    let mut frames = Vec::new();
    loop {
        match cap.next_packet() {
            // libpcap reads seconds and fraction as signed 32-bit numbers, the block reader
            // as unsigned: compared only where the signed reading is not negative.
            Ok(p) => {
                let (sec, frac) = (p.header.ts.tv_sec as u32, p.header.ts.tv_usec);
                let us = (frac >= 0).then(|| u64::from(sec) * 1_000_000 + frac as u64);
                frames.push((us, p.data.to_vec()));
            }
            Err(pcap::Error::NoMorePackets) => return Some((frames, true)),
            Err(_) => return Some((frames, false)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(mine) = ours(data) else {
        return;
    };
    let path = std::env::temp_dir().join(format!("tcpreset-fuzz-{}.pcap", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let theirs = libpcap(&path).expect("libpcap refuses a file the block reader takes");
    assert_eq!(mine.1, theirs.1, "the readings end differently");
    assert_eq!(mine.0.len(), theirs.0.len(), "different numbers of frames");
    for (i, (a, b)) in mine.0.iter().zip(&theirs.0).enumerate() {
        assert_eq!(a.1, b.1, "frame {i} differs");
        if b.0.is_some() {
            assert_eq!(a.0, b.0, "frame {i}: timestamps differ");
        }
    }
});
