//! The block reader read against libpcap: what each makes of a file and where they part, for
//! the differential tests (`tests/savefile.rs`) and the `pcap_reader` fuzz target.
use super::Reader;
use std::io::Read;
use std::path::Path;

/// A frame as read: its timestamp in microseconds (`None`: not compared) and its bytes.
pub type Frame = (Option<u64>, Vec<u8>);

/// What a reader made of a file: its frames (timestamp in microseconds, or `None` where the
/// two readings differ on purpose; the bytes) and whether it ended cleanly or with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub frames: Vec<Frame>,
    pub clean_end: bool,
}

impl Reading {
    /// `Ok` when `libpcap` (libpcap's reading of the same file) gives the same frames and ends
    /// the same way; otherwise where they part, said briefly.
    pub fn agrees_with(&self, libpcap: &Reading) -> Result<(), String> {
        let same = |(a, b): &(&Frame, &Frame)| a.1 == b.1 && (b.0.is_none() || a.0 == b.0);
        let pairs = self.frames.iter().zip(&libpcap.frames);
        if let Some((i, (a, b))) = pairs.enumerate().find(|(_, p)| !same(p)) {
            return Err(format!(
                "frame {i}: ({:?} µs, {} bytes) against ({:?} µs, {} bytes)",
                a.0,
                a.1.len(),
                b.0,
                b.1.len()
            ));
        }
        if (self.frames.len(), self.clean_end) != (libpcap.frames.len(), libpcap.clean_end) {
            return Err(format!(
                "{} frames, clean end {} against {} frames, clean end {}",
                self.frames.len(),
                self.clean_end,
                libpcap.frames.len(),
                libpcap.clean_end
            ));
        }
        Ok(())
    }
}

/// The block reader's reading of `bytes`, streamed; `None` when it leaves the file to libpcap.
pub fn by_block_reader(bytes: &[u8]) -> Option<Reading> {
    Reader::new(bytes).ok()?.map(drain)
}

/// The block reader's reading of the file at `path`, mapped; `None` as for [`by_block_reader`].
pub fn by_block_reader_mapped(path: &Path) -> Option<Reading> {
    Reader::open(path).ok()?.map(drain)
}

fn drain<R: Read>(mut r: Reader<R>) -> Reading {
    let mut frames = Vec::new();
    let clean_end = loop {
        match r.next_frame() {
            Ok(Some((ts, data))) => frames.push((Some(ts.as_micros()), data.to_vec())),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    Reading { frames, clean_end }
}

/// libpcap's reading of the file at `path`; `None` when it refuses to open it.
pub fn by_libpcap(path: &Path) -> Option<Reading> {
    let mut cap = pcap::Capture::from_file(path).ok()?;
    let mut frames = Vec::new();
    let clean_end = loop {
        match cap.next_packet() {
            // libpcap reads the record header's seconds and fraction as signed 32-bit numbers
            // and the block reader as unsigned ones (a time after 2038 is not 1901 to a
            // replay); both readings agree whenever the signed one is not negative.
            Ok(p) => {
                let (sec, frac) = (p.header.ts.tv_sec as u32, p.header.ts.tv_usec);
                let us = (frac >= 0).then(|| u64::from(sec) * 1_000_000 + frac as u64);
                frames.push((us, p.data.to_vec()));
            }
            Err(pcap::Error::NoMorePackets) => break true,
            Err(_) => break false,
        }
    };
    Some(Reading { frames, clean_end })
}
