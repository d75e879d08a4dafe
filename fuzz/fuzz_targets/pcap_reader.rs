//! Bytes → the pcap block reader: frames or an error, never a panic, and never a frame longer
//! than the bytes given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::io::savefile::Reader;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(mut reader)) = Reader::new(data) else {
        return;
    };
    let _ = reader.header();
    let mut total = 0usize;
    while let Ok(Some((_, frame))) = reader.next_frame() {
        total += 16 + frame.len();
        assert!(total <= data.len() - 24, "frames longer than the file");
    }
});
