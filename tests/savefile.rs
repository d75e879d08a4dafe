//! The block reader of `--replay` yields exactly what libpcap yields, on every capture we hold.
mod replay;

use replay::{read_pcap, shared_pcaps};
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
