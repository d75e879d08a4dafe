//! Classic pcap files read in large blocks, for `tcpresetd --replay`.
//!
//! libpcap reads a savefile with two buffered `fread` calls per packet, each taking the stdio
//! lock; at millions of packets that is most of a replay's time. A classic pcap file is a
//! 24-byte header and records of a 16-byte header plus the frame, so this reader hands out
//! frames in place: from windows of the file mapped into memory ([`super::mapped`], no copy)
//! when it is a regular file, otherwise from a 128 KiB buffer filled with one `read`. Files in
//! any other format (pcapng, unknown magic) are left to libpcap: [`Reader::open`] returns
//! `None` for them.
pub mod differential;

use super::mapped::{self, Window};
use crate::time::Instant;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// What went wrong reading a classic pcap file.
#[derive(Debug, thiserror::Error)]
pub enum SavefileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("record {index} claims {len} captured bytes, more than libpcap accepts for link type {linktype} ({max}): the file is corrupt")]
    Oversized {
        index: u64,
        len: u32,
        linktype: u32,
        max: u32,
    },
    #[error("the file ends inside record {index}: it was cut short")]
    Truncated { index: u64 },
}

/// Which of a record's two length fields holds the captured length: files before version 2.3
/// (and DG/UX's 543.0) put the original length first, and some 2.3 files do either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lengths {
    InOrder,
    Swapped,
    MaybeSwapped,
}

/// The file header: byte order, timestamp unit, snapshot length and link type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    swapped: bool,
    nanos: bool,
    lengths: Lengths,
    /// The snapshot length as the header states it.
    pub snaplen: u32,
    /// The snapshot length a record is cut to: the header's, or the link type's maximum when
    /// the header's is 0 or above `i32::MAX` (as libpcap adjusts it).
    snapshot: u32,
    pub linktype: u32,
}

/// The largest record libpcap reads for a link type (its `max_snaplen_for_dlt`); a record
/// above it is an error, one between the snapshot length and it is cut to the snapshot length.
fn max_record(linktype: u32) -> u32 {
    match linktype {
        231 => 128 * 1024 * 1024, // D-Bus
        279 => 8 * 1024 * 1024,   // EBHSCR
        249 => 1024 * 1024,       // USBPcap
        _ => 262_144,
    }
}

/// Link types whose pseudo-header libpcap byte-swaps in a file of the other byte order
/// (PFLOG, Linux cooked v1 and v2, Linux USB, NFLOG): such files are left to libpcap.
const SWAPPED_PSEUDO_HEADERS: [u32; 6] = [117, 113, 276, 189, 220, 239];

impl FileHeader {
    /// Reads the 24-byte header; `None` unless it is a classic pcap file (µs or ns, either
    /// order) of a version libpcap reads (2.0 to 2.4, or 543.0), so that libpcap reports
    /// everything else in its own words.
    pub fn parse(b: &[u8]) -> Option<FileHeader> {
        let b: &[u8; 24] = b.get(..24)?.try_into().ok()?;
        let (swapped, nanos) = match u32::from_le_bytes([b[0], b[1], b[2], b[3]]) {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let mut h = FileHeader {
            swapped,
            nanos,
            lengths: Lengths::InOrder,
            snaplen: 0,
            snapshot: 0,
            linktype: 0,
        };
        let u16_at = |at: usize| {
            let v = [b[at], b[at + 1]];
            if swapped {
                u16::from_be_bytes(v)
            } else {
                u16::from_le_bytes(v)
            }
        };
        h.lengths = match (u16_at(4), u16_at(6)) {
            (2, 0..=2) | (543, 0) => Lengths::Swapped,
            (2, 3) => Lengths::MaybeSwapped,
            (2, 4) => Lengths::InOrder,
            _ => return None,
        };
        // The upper bits hold FCS information; the link type is the low 16.
        h.linktype = h.u32_at(b, 20) & 0xffff;
        if swapped && SWAPPED_PSEUDO_HEADERS.contains(&h.linktype) {
            return None;
        }
        h.snaplen = h.u32_at(b, 16);
        h.snapshot = match h.snaplen {
            0 | 0x8000_0000.. => max_record(h.linktype),
            n => n,
        };
        Some(h)
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.swapped {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// A record header's timestamp and captured length.
    fn record(&self, b: &[u8]) -> (Instant, u32) {
        // Seconds unsigned (a classic file's times run to 2106). The fraction as libpcap reads
        // it: signed in a file of this machine's byte order, unsigned in the other (its byte
        // swap yields an unsigned value); a fraction past 2^31 is garbage either way.
        let secs = i64::from(self.u32_at(b, 0));
        let raw = self.u32_at(b, 4);
        let frac = if self.swapped {
            i64::from(raw)
        } else {
            i64::from(raw as i32)
        };
        let micros = if self.nanos { frac / 1000 } else { frac };
        let (first, second) = (self.u32_at(b, 8), self.u32_at(b, 12));
        let caplen = match self.lengths {
            Lengths::InOrder => first,
            Lengths::Swapped => second,
            Lengths::MaybeSwapped => first.min(second),
        };
        (Instant::from_timeval(secs, micros), caplen)
    }
}

/// A classic pcap file, read block by block.
pub struct Reader<R = File> {
    src: Source<R>,
    header: FileHeader,
    start: usize,
    end: usize,
    index: u64,
}

/// Where the bytes come from.
enum Source<R> {
    /// A stream read into a buffer.
    Read { inner: R, buf: Vec<u8> },
    /// A regular file, mapped a window at a time, each at least `min_len` bytes.
    Map {
        file: File,
        window: Window,
        min_len: usize,
    },
}

/// The buffer of a stream.
const BLOCK: usize = 1 << 17;
/// The smallest window of a mapped file.
const WINDOW: usize = 8 << 20;

impl Reader<File> {
    /// Opens `path`; `Ok(None)` when it is not a classic pcap file. A regular file is mapped.
    pub fn open(path: &Path) -> std::io::Result<Option<Self>> {
        let file = File::open(path)?;
        if !file.metadata()?.is_file() {
            return Reader::new(file);
        }
        let mut head = [0u8; 24];
        match (&file).read_exact(&mut head) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            r => r?,
        }
        Ok(FileHeader::parse(&head).map(|header| Reader {
            src: Source::Map {
                file,
                window: Window::empty(),
                min_len: WINDOW,
            },
            header,
            // The first window starts at offset 0: skip the file header in it.
            start: 24,
            end: 24,
            index: 0,
        }))
    }
}

impl<R: Read> Reader<R> {
    /// Reads the header from `inner`; `Ok(None)` when it is not a classic pcap file.
    pub fn new(mut inner: R) -> std::io::Result<Option<Self>> {
        let mut head = [0u8; 24];
        let mut got = 0;
        while got < head.len() {
            match inner.read(&mut head[got..])? {
                0 => return Ok(None),
                n => got += n,
            }
        }
        Ok(FileHeader::parse(&head).map(|header| Reader {
            src: Source::Read {
                inner,
                buf: vec![0; BLOCK],
            },
            header,
            start: 0,
            end: 0,
            index: 0,
        }))
    }

    /// The bytes in hand; `start..end` of them are not handed out yet.
    fn buf(&self) -> &[u8] {
        match &self.src {
            Source::Read { buf, .. } => buf,
            Source::Map { window, .. } => window.bytes(),
        }
    }

    pub fn header(&self) -> FileHeader {
        self.header
    }

    /// Makes at least `want` bytes available from `start`; false at the end of the file, with
    /// `start..end` then holding what is left of it.
    fn fill(&mut self, want: usize) -> std::io::Result<bool> {
        if self.end - self.start >= want {
            return Ok(true);
        }
        match &mut self.src {
            Source::Read { inner, buf } => {
                buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                // Grown as bytes come, not to what a record claims: a stream that claims a
                // huge record and ends costs what it sent.
                while self.end < want {
                    if self.end == buf.len() {
                        let grown = (buf.len() * 2).min(want.next_power_of_two());
                        buf.resize(grown, 0);
                    }
                    match inner.read(&mut buf[self.end..]) {
                        Ok(0) => return Ok(false),
                        Ok(n) => self.end += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(true)
            }
            Source::Map {
                file,
                window,
                min_len,
            } => {
                // Map a new window from the page holding `start` to at least `want` bytes
                // past it, or to the end of the file (its length read afresh).
                let at = window.offset() + self.start as u64;
                let file_len = file.metadata()?.len().max(at);
                let base = at - at % mapped::page_size();
                let skip = (at - base) as usize;
                let len = (skip + want.max(*min_len)).min((file_len - base) as usize);
                // Unmap the old window before mapping the next, so at most one is resident.
                *window = Window::empty();
                *window = Window::map(file, base, len)?;
                self.start = skip;
                self.end = len;
                Ok(self.end - self.start >= want)
            }
        }
    }

    /// The next frame and its timestamp, or `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<(Instant, &[u8])>, SavefileError> {
        if !self.fill(16)? {
            return match self.end - self.start {
                0 => Ok(None),
                _ => Err(SavefileError::Truncated { index: self.index }),
            };
        }
        let (ts, len) = self.header.record(&self.buf()[self.start..self.start + 16]);
        let max = max_record(self.header.linktype);
        if len > max {
            return Err(SavefileError::Oversized {
                index: self.index,
                len,
                linktype: self.header.linktype,
                max,
            });
        }
        // Like libpcap, a record longer than the snapshot length is cut to it.
        let total = 16 + len as usize;
        if !self.fill(total)? {
            return Err(SavefileError::Truncated { index: self.index });
        }
        let at = self.start;
        let kept = len.min(self.header.snapshot) as usize;
        self.start += total;
        self.index += 1;
        Ok(Some((ts, &self.buf()[at + 16..at + 16 + kept])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `frames`, little-endian, microseconds (or big-endian nanoseconds).
    fn file(big_nanos: bool, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let word = |v: u32| {
            if big_nanos {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend(word(if big_nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        f.extend(if big_nanos {
            [0, 2, 0, 4]
        } else {
            [2, 0, 4, 0]
        });
        f.extend([0; 8]);
        f.extend(word(65_535));
        f.extend(word(1));
        for (s, frac, data) in frames {
            f.extend(word(*s));
            f.extend(word(*frac));
            f.extend(word(data.len() as u32));
            f.extend(word(data.len() as u32));
            f.extend(*data);
        }
        f
    }

    /// Every frame of `bytes`, read as a stream and, from a file, through mapped windows of
    /// one page (so records cross window ends); both ways must agree, errors included.
    fn all(bytes: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, SavefileError> {
        fn drain<R: Read>(mut r: Reader<R>) -> Result<Vec<(u64, Vec<u8>)>, SavefileError> {
            let mut v = Vec::new();
            while let Some((ts, data)) = r.next_frame()? {
                v.push((ts.as_micros(), data.to_vec()));
            }
            Ok(v)
        }
        let streamed = drain(Reader::new(bytes).unwrap().expect("classic pcap"));
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        let mut mapped = Reader::open(file.path()).unwrap().expect("classic pcap");
        if let Source::Map { min_len, .. } = &mut mapped.src {
            *min_len = mapped::page_size() as usize;
        } else {
            panic!("a regular file is mapped");
        }
        assert_eq!(
            format!("{:?}", drain(mapped)),
            format!("{streamed:?}"),
            "mapped and streamed reads differ"
        );
        streamed
    }

    #[test]
    fn reads_both_byte_orders_and_units() {
        let le = file(false, &[(1, 5, b"abc"), (2, 0, b"")]);
        assert_eq!(
            all(&le).unwrap(),
            [(1_000_005, b"abc".to_vec()), (2_000_000, vec![])]
        );
        let be = file(true, &[(3, 7_000, b"xy")]);
        let r = Reader::new(&be[..]).unwrap().unwrap();
        assert_eq!(r.header().linktype, 1);
        assert_eq!(all(&be).unwrap(), [(3_000_007, b"xy".to_vec())]);
    }

    #[test]
    fn records_larger_than_the_buffer_and_across_blocks() {
        let big = vec![7u8; BLOCK + 10];
        let small = vec![1u8; 60];
        let mut frames: Vec<(u32, u32, &[u8])> = (0..20_000).map(|i| (i, 0, &small[..])).collect();
        frames.push((9, 9, &big));
        let mut f = file(false, &frames);
        // The snapshot length must allow the big record.
        f[16..20].copy_from_slice(&(BLOCK as u32 * 2).to_le_bytes());
        let got = all(&f).unwrap();
        assert_eq!(got.len(), 20_001);
        assert!(got[..20_000].iter().all(|(_, d)| *d == small));
        assert_eq!(got[20_000].1, big);
    }

    #[test]
    fn corrupt_and_cut_files_are_errors_not_panics() {
        let f = file(false, &[(1, 0, b"abcdef")]);
        let cut = &f[..f.len() - 2];
        assert!(matches!(
            all(cut),
            Err(SavefileError::Truncated { index: 0 })
        ));
        let mut huge = f.clone();
        huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            all(&huge),
            Err(SavefileError::Oversized { index: 0, .. })
        ));
        assert!(all(&f[..24 + 7]).is_err(), "a cut record header");
    }

    #[test]
    fn other_formats_are_left_to_libpcap() {
        let pcapng = [0x0a, 0x0d, 0x0d, 0x0a].repeat(8);
        assert!(Reader::new(&pcapng[..]).unwrap().is_none());
        assert!(Reader::new(&b"short"[..]).unwrap().is_none());
    }
}
