//! Bytes → the pcap block reader, differentially against libpcap: a file the block reader
//! takes (it leaves other formats and versions to libpcap) gives the same frames, and ends
//! the same way (cleanly or with an error), as libpcap reading it; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::io::savefile::differential::{by_block_reader, by_libpcap};

fuzz_target!(|data: &[u8]| {
    let Some(mine) = by_block_reader(data) else {
        return;
    };
    // In memory where it can be: rewriting a file in place on ext4 flushes it at close
    // (auto_da_alloc), which made each run wait for the disk (300 runs/s instead of 8,500).
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!("tcpreset-fuzz-{}.pcap", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let theirs = by_libpcap(&path).expect("libpcap refuses a file the block reader takes");
    if let Err(e) = mine.agrees_with(&theirs) {
        panic!("the block reader and libpcap differ at {e}");
    }
});
