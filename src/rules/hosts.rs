//! The per-host lookup structures of a [`super::Matcher`]: an exact index from host to the
//! range of its rules, and a small filter that rules most hosts out before that index is probed.
use std::net::IpAddr;

/// Where a host's rules lie in the matcher's entries: start and count.
pub type Span = (u32, u32);

/// Rule hosts and their spans: IPv4 addresses as `u32` keys (12-byte slots, and a cheaper hash
/// than `IpAddr`'s), IPv6 as `u128`.
#[derive(Debug, Default)]
pub struct HostIndex {
    v4: foldhash::HashMap<u32, Span>,
    v6: foldhash::HashMap<u128, Span>,
}

impl HostIndex {
    pub fn get(&self, host: &IpAddr) -> Option<Span> {
        match host {
            IpAddr::V4(a) => self.v4.get(&u32::from(*a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(*a)).copied(),
        }
    }

    /// The span of `host`, added as `(0, 0)` if missing.
    pub fn span_mut(&mut self, host: &IpAddr) -> &mut Span {
        match host {
            IpAddr::V4(a) => self.v4.entry(u32::from(*a)).or_default(),
            IpAddr::V6(a) => self.v6.entry(u128::from(*a)).or_default(),
        }
    }

    /// Room for `n` more IPv4 hosts.
    pub fn reserve_v4(&mut self, n: usize) {
        self.v4.reserve(n);
    }

    pub fn spans_mut(&mut self) -> impl Iterator<Item = &mut Span> {
        self.v4.values_mut().chain(self.v6.values_mut())
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Span)> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|(a, s)| (IpAddr::from(a.to_be_bytes()), *s));
        let v6 = self
            .v6
            .iter()
            .map(|(a, s)| (IpAddr::from(a.to_be_bytes()), *s));
        v4.chain(v6)
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// A blocked Bloom filter of hosts: each host sets two bits of one 64-bit word, so a test
/// costs one memory access. Sized to the host count (16 to 32 bits per host, at most 256 KiB,
/// which stays in a 1 MiB or larger L2 cache beside the packet stream): with 100,000 hosts
/// about one other host in a hundred passes to the hash probe (a miss in the L2 cache), with
/// a thousand hosts almost none.
#[derive(Debug, Default)]
pub struct HostBits {
    words: Vec<u64>,
    /// 64 minus log2 of the word count: the shift that turns a hash into a word index.
    shift: u32,
}

/// The largest filter: 2^15 words (256 KiB).
const MAX_WORDS_LOG2: u32 = 15;

impl HostBits {
    pub fn with_hosts(hosts: usize) -> Self {
        let log2 = (hosts.max(1) / 4 + 1)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(1, MAX_WORDS_LOG2);
        HostBits {
            words: vec![0; 1 << log2],
            shift: 64 - log2,
        }
    }

    /// The word index and the two-bit mask of `ip`.
    fn slot(&self, ip: &IpAddr) -> (usize, u64) {
        let x = match ip {
            IpAddr::V4(v4) => u64::from(u32::from(*v4)),
            IpAddr::V6(v6) => {
                let n = u128::from(*v6);
                (n as u64) ^ ((n >> 64) as u64).rotate_left(17)
            }
        };
        let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mask = (1 << ((h >> 20) & 63)) | (1 << ((h >> 26) & 63));
        ((h >> self.shift) as usize, mask)
    }

    pub fn insert(&mut self, ip: &IpAddr) {
        let (w, mask) = self.slot(ip);
        self.words[w] |= mask;
    }

    pub fn may_contain(&self, ip: &IpAddr) -> bool {
        let (w, mask) = self.slot(ip);
        self.words.get(w).is_some_and(|v| v & mask == mask)
    }
}
