//! The block reader of `--replay` yields exactly what libpcap yields, on every capture we hold.
mod replay;

use replay::{read_pcap, shared_pcaps};
use tcpreset::io::savefile::differential::{self, Reading};
use tcpreset::io::savefile::Reader;
use tcpreset::wire::LinkType;

#[test]
fn block_reader_agrees_with_libpcap_on_every_capture() {
    let mut files: Vec<_> = std::fs::read_dir(shared_pcaps())
        .expect("../shared/data/pcap is beside the repository")
        .chain(std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    assert!(files.len() >= 14, "expected the captures, found {files:?}");
    for path in files {
        let (link, want) = read_pcap(&path);
        let mut r = Reader::open(&path)
            .unwrap()
            .unwrap_or_else(|| panic!("{} is classic pcap", path.display()));
        assert_eq!(
            LinkType::from_linktype(r.header().linktype as i32),
            Some(link),
            "{}",
            path.display()
        );
        let mut got = Vec::new();
        while let Some((ts, frame)) = r.next_frame().unwrap() {
            got.push((ts, frame.to_vec()));
        }
        assert_eq!(got.len(), want.len(), "{}", path.display());
        assert!(got == want, "{}: frames differ", path.display());
    }
}

/// The block reader's reading of `bytes`, mapped from `path` and streamed; both ways must
/// agree. `None` when it leaves the file to libpcap.
fn by_block_reader(path: &std::path::Path, bytes: &[u8]) -> Option<Reading> {
    let streamed = differential::by_block_reader(bytes);
    let mapped = differential::by_block_reader_mapped(path);
    assert_eq!(mapped, streamed, "mapped and streamed reads differ");
    streamed
}

/// A deterministic xorshift generator: the same cases on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A classic pcap file: magic (µs or ns, either byte order), version, snapshot length, link
/// type, and records given as (seconds, fraction, caplen field, len field, bytes).
fn craft(
    big: bool,
    nanos: bool,
    version: (u16, u16),
    snaplen: u32,
    linktype: u32,
    records: &[(u32, u32, u32, u32, Vec<u8>)],
) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut f = Vec::new();
    f.extend(w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend(w16(version.0));
    f.extend(w16(version.1));
    f.extend([0; 8]);
    f.extend(w32(snaplen));
    f.extend(w32(linktype));
    for (s, frac, caplen, len, data) in records {
        for v in [*s, *frac, *caplen, *len] {
            f.extend(w32(v));
        }
        f.extend(data);
    }
    f
}

/// Compares both readers on `bytes`; returns whether the block reader took the file.
fn agree(dir: &std::path::Path, bytes: &[u8], what: &str) -> bool {
    let path = dir.join("case.pcap");
    std::fs::write(&path, bytes).unwrap();
    let Some(ours) = by_block_reader(&path, bytes) else {
        return false;
    };
    let Some(theirs) = differential::by_libpcap(&path) else {
        panic!("{what}: libpcap refuses a file the block reader takes");
    };
    if let Err(e) = ours.agrees_with(&theirs) {
        panic!("{what}: the block reader and libpcap differ at {e}");
    }
    true
}

#[test]
fn block_reader_agrees_with_libpcap_on_crafted_headers_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let body = |n: usize| (0..n).map(|i| i as u8).collect::<Vec<u8>>();
    let mut taken = 0;
    let versions = [
        (1, 0),
        (2, 0),
        (2, 2),
        (2, 3),
        (2, 4),
        (2, 5),
        (3, 0),
        (9, 9),
        (543, 0),
        (543, 1),
    ];
    let snaplens = [
        0,
        60,
        65_535,
        65_536,
        262_144,
        262_145,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
    ];
    let caplens = [
        0u32,
        1,
        60,
        65_535,
        65_536,
        262_144,
        262_145,
        1 << 20,
        (1 << 20) + 1,
    ];
    for &version in &versions {
        for &snaplen in &snaplens {
            // Ethernet (with FCS bits above the low 16), Linux cooked, and USBPcap,
            // whose records may reach 1 MiB.
            for linktype in [0x1234_0001u32, 113, 249] {
                for (big, nanos) in [(false, false), (true, true)] {
                    for &caplen in &caplens {
                        // The len field both above and below the caplen field, for the
                        // versions whose two length fields trade places.
                        for len in [caplen.saturating_sub(1), caplen + 7] {
                            let n = caplen.max(len).min(270_000) as usize;
                            let records =
                                [(5, 999_999, caplen, len, body(n)), (6, 1, 3, 3, body(3))];
                            let f = craft(big, nanos, version, snaplen, linktype, &records);
                            let what = format!("version {version:?} snaplen {snaplen} linktype {linktype:#x} big {big} caplen {caplen} len {len}");
                            taken += agree(dir.path(), &f, &what) as usize;
                        }
                    }
                }
            }
        }
    }
    // Every version libpcap reads (2.0-2.4 and 543.0) in both byte orders is taken, except
    // swapped Linux cooked captures (113), whose pseudo-header libpcap byte-swaps.
    assert!(taken > 4_000, "the block reader took only {taken} files");
}

#[test]
fn block_reader_agrees_with_libpcap_on_cut_and_mutated_captures() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = 0;
    for name in [
        "chat-v4.pcap",
        "chat-v6.pcap",
        "two-hosts-v4.pcap",
        "bulk-v4.pcap",
    ] {
        let whole = std::fs::read(format!("{data}/{name}")).unwrap();
        let whole = &whole[..whole.len().min(64 * 1024)];
        // Cut at every length through the first records, then anywhere.
        for cut in (0..whole.len().min(400)).chain((0..50).map(|_| rng.below(whole.len()))) {
            agree(dir.path(), &whole[..cut], &format!("{name} cut at {cut}"));
            cases += 1;
        }
        // Bytes changed in the file header and in record headers and bodies.
        for _ in 0..400 {
            let mut f = whole.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = match rng.below(3) {
                    0 => rng.below(24),
                    1 => 24 + rng.below(16),
                    _ => rng.below(f.len()),
                };
                f[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.next() as u8,
                };
            }
            agree(dir.path(), &f, &format!("{name} mutated"));
            cases += 1;
        }
    }
    assert!(cases > 2_000);
}

#[test]
fn block_reader_agrees_with_libpcap_on_the_fuzzers_findings() {
    let dir = tempfile::tempdir().unwrap();
    let found = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/pcap_reader");
    let mut n = 0;
    for entry in std::fs::read_dir(found).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(agree(dir.path(), &bytes, &path.display().to_string()));
        n += 1;
    }
    assert!(n >= 1, "no findings in {found}");
}
