//! Field values read from log records: how they compare, group and print, plus CIDR and time parsing.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

use serde_json::Value as Json;

/// One field of a log record. Strings borrow from the line they were read from when they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An array or object, kept whole (rare: queries and groups look at scalars).
    Json(Json),
}

impl<'a> Val<'a> {
    /// Converts a parsed JSON value, borrowing nothing.
    pub fn from_json(value: &Json) -> Val<'a> {
        match value {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Val::Str(Cow::Owned(s.clone())),
            other => Val::Json(other.clone()),
        }
    }

    /// The value as a number: numbers, and strings that parse as one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as text, the way a user would write it in a playbook.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Val::Null => Cow::Borrowed("null"),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Num(n) => Cow::Owned(format_number(*n)),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Json(j) => Cow::Owned(j.to_string()),
        }
    }

    /// The grouping key of this value; `None` for null (ungrouped, as in Elasticsearch).
    pub fn key(&self) -> Option<KeyRef<'_>> {
        match self {
            Val::Null => None,
            Val::Bool(b) => Some(KeyRef::Bool(*b)),
            Val::Num(n) => Some(KeyRef::Num(*n)),
            Val::Str(s) => Some(KeyRef::Str(s)),
            Val::Json(_) => None,
        }
    }

    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Num(n) => Val::Num(n),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Json(j) => Val::Json(j),
        }
    }
}

/// Prints integral numbers without a fraction (`22`, not `22.0`).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A number as JSON: integral values become JSON integers.
pub fn number_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// A borrowed grouping key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyRef<'a> {
    Bool(bool),
    Num(f64),
    Str(&'a str),
}

/// An owned grouping key, stored in aggregation buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Bool(bool),
    /// The bits of an `f64` (`-0.0` is normalised to `0.0`).
    Num(u64),
    Str(Box<str>),
}

impl Key {
    pub fn num(n: f64) -> Key {
        Key::Num(if n == 0.0 {
            0f64.to_bits()
        } else {
            n.to_bits()
        })
    }

    pub fn to_json(&self) -> Json {
        match self {
            Key::Bool(b) => Json::Bool(*b),
            Key::Num(bits) => number_json(f64::from_bits(*bits)),
            Key::Str(s) => Json::String(s.to_string()),
        }
    }

    /// Elasticsearch's `_key` order: numbers numerically, then strings, booleans last.
    pub fn cmp_key(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => f64::from_bits(*a).total_cmp(&f64::from_bits(*b)),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Key::Num(_) => 0,
            Key::Str(_) => 1,
            Key::Bool(_) => 2,
        }
    }
}

impl From<KeyRef<'_>> for Key {
    fn from(k: KeyRef<'_>) -> Key {
        match k {
            KeyRef::Bool(b) => Key::Bool(b),
            KeyRef::Num(n) => Key::num(n),
            KeyRef::Str(s) => Key::Str(s.into()),
        }
    }
}

/// A literal written in a playbook (`is: 22`, `in: [tcp, udp]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    Num(f64),
    Str(String),
}

impl Literal {
    pub fn from_json(value: &Json) -> Option<Literal> {
        match value {
            Json::Bool(b) => Some(Literal::Bool(*b)),
            Json::Number(n) => n.as_f64().map(Literal::Num),
            Json::String(s) => Some(Literal::Str(s.clone())),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Literal::Num(n) => Some(*n),
            Literal::Str(s) => s.trim().parse().ok(),
            Literal::Bool(_) => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Literal::Bool(b) => Json::Bool(*b),
            Literal::Num(n) => number_json(*n),
            Literal::Str(s) => Json::String(s.clone()),
        }
    }

    /// Equality the way a user means it: `22` equals `"22"`, `true` equals `"true"`.
    pub fn matches(&self, value: &Val<'_>) -> bool {
        match (self, value) {
            (Literal::Str(a), Val::Str(b)) => a == b.as_ref(),
            (Literal::Bool(a), Val::Bool(b)) => a == b,
            (lit, val) => match (lit.as_f64(), val.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => match lit {
                    Literal::Str(s) => *s == val.to_text(),
                    Literal::Bool(b) => val.to_text() == if *b { "true" } else { "false" },
                    Literal::Num(_) => false,
                },
            },
        }
    }
}

/// An IPv4 or IPv6 network such as `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` or a bare address (a /32 or /128).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses a log timestamp into microseconds since the Unix epoch.
///
/// Accepts epoch seconds (Zeek `ts`, as a number or a numeric string) and RFC 3339-like text
/// (`2018-03-24T14:37:19.037299-0600`, `...Z`, `...+00:00`; without an offset it is UTC, as in
/// older Suricata). Returns `None` for anything else, such as Zeek's masked `XXXXXXXXXX.XXXXXX`.
pub fn parse_timestamp_micros(value: &Val<'_>) -> Option<i64> {
    match value {
        Val::Num(secs) => secs.is_finite().then(|| (secs * 1e6).round() as i64),
        Val::Str(s) => parse_text_timestamp(s),
        _ => None,
    }
}

fn parse_text_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        return parse_rfc3339_micros(b);
    }
    let secs: f64 = s.parse().ok()?;
    secs.is_finite().then(|| (secs * 1e6).round() as i64)
}

fn digits(b: &[u8], from: usize, len: usize) -> Option<i64> {
    let part = b.get(from..from + len)?;
    part.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn parse_rfc3339_micros(b: &[u8]) -> Option<i64> {
    if let Ok(fixed) = b.try_into() {
        if let Some(micros) = parse_suricata_micros(fixed) {
            return micros;
        }
    }
    parse_rfc3339_general(b)
}

/// The form Suricata writes, `2025-06-01T13:20:45.123456+0000`, read in one pass; `None` when
/// `b` is not in that form (the general parser then decides), `Some(None)` when it is but out of
/// range (a 13th month).
fn parse_suricata_micros(b: &[u8; 31]) -> Option<Option<i64>> {
    const DIGITS: [usize; 24] = [
        0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25, 27, 28, 29, 30,
    ];
    let shape = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && matches!(b[26], b'+' | b'-')
        && DIGITS.iter().all(|&i| b[i].is_ascii_digit());
    if !shape {
        return None;
    }
    let n = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'))
    };
    let (year, month, day) = (n(0, 4), n(5, 7), n(8, 10));
    let (h, m, sec) = (n(11, 13), n(14, 16), n(17, 19));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return Some(None);
    }
    let offset = n(27, 29) * 3600 + n(29, 31) * 60;
    let offset = if b[26] == b'+' { offset } else { -offset };
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec - offset;
    Some(Some(secs * 1_000_000 + n(20, 26)))
}

fn parse_rfc3339_general(b: &[u8]) -> Option<i64> {
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs_of_day = 0;
    let mut i = 10;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.get(13) != Some(&b':') {
            return None;
        }
        let (h, m) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
        let sec = if b.get(16) == Some(&b':') {
            digits(b, 17, 2)?
        } else {
            return None;
        };
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        secs_of_day = h * 3600 + m * 60 + sec;
        i = 19;
    }
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            micros += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let h = digits(b, i + 1, 2)?;
            let rest = &b[i + 3..];
            let m = match rest {
                [] => 0,
                [b':', ..] if rest.len() == 3 => digits(rest, 1, 2)?,
                _ if rest.len() == 2 => digits(rest, 0, 2)?,
                _ => return None,
            };
            let off = h * 3600 + m * 60;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + secs_of_day - offset_secs) * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<i64> {
        parse_timestamp_micros(&Val::Str(Cow::Borrowed(s)))
    }

    #[test]
    fn parses_the_timestamp_forms_sensors_write() {
        // Suricata 2018 with a -0600 offset; 14:37:19 MDT is 20:37:19 UTC.
        assert_eq!(
            ts("2018-03-24T14:37:19.037299-0600"),
            Some(1_521_923_839_037_299)
        );
        assert_eq!(
            ts("2018-03-24T20:37:19.037299Z"),
            Some(1_521_923_839_037_299)
        );
        assert_eq!(
            ts("2018-03-24T20:37:19.037299+00:00"),
            Some(1_521_923_839_037_299)
        );
        // Older Suricata: no offset means UTC.
        assert_eq!(
            ts("2019-01-02T03:50:11.315110"),
            Some(1_546_401_011_315_110)
        );
        // Suricata run over a pcap whose clock started near 0.
        assert_eq!(ts("1969-12-31T16:00:00.000003-0800"), Some(3));
        assert_eq!(
            parse_timestamp_micros(&Val::Num(1_521_911_721.255_387)),
            Some(1_521_911_721_255_387)
        );
        assert_eq!(ts("1521911721.255387"), Some(1_521_911_721_255_387));
        assert_eq!(ts("XXXXXXXXXX.XXXXXX"), None);
        assert_eq!(ts("2018-13-01T00:00:00Z"), None);
        assert_eq!(ts("2018-03-24T14:37:19-06"), Some(1_521_923_839_000_000));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn the_suricata_form_reads_as_the_general_parser_reads_it(
            parts in proptest::collection::vec(
                proptest::sample::select(&[0u32, 1, 2, 9, 12, 13, 19, 23, 24, 29, 31, 32, 59, 60, 61, 99][..]),
                9,
            ),
            seps in proptest::collection::vec(proptest::sample::select(&b"-:.T t+Zx0"[..]), 7),
            flip in 0usize..80,
            to in proptest::sample::select(&b"0/:a"[..]),
            minus: bool,
        ) {
            let [y1, y2, mo, d, h, mi, s, o1, o2] = parts[..] else { unreachable!() };
            let mut text = format!(
                "{y1:02}{y2:02}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}{}{o1:02}{o2:02}",
                u64::from(h) * 10_007 % 1_000_000,
                if minus { '-' } else { '+' },
            )
            .into_bytes();
            for (i, sep) in [4, 7, 10, 13, 16, 19, 26].into_iter().zip(&seps) {
                if flip % 5 == 0 {
                    text[i] = *sep;
                }
            }
            if flip < text.len() {
                text[flip] = to;
            }
            let fixed: &[u8; 31] = text[..].try_into().unwrap();
            let general = parse_rfc3339_general(&text);
            match parse_suricata_micros(fixed) {
                Some(fast) => proptest::prop_assert_eq!(fast, general, "{:?}", String::from_utf8_lossy(&text)),
                None => proptest::prop_assert!(
                    !text.iter().enumerate().all(|(i, c)| match i {
                        4 | 7 => *c == b'-',
                        10 => matches!(c, b'T' | b't' | b' '),
                        13 | 16 => *c == b':',
                        19 => *c == b'.',
                        26 => matches!(c, b'+' | b'-'),
                        _ => c.is_ascii_digit(),
                    }),
                    "{:?}", String::from_utf8_lossy(&text)
                ),
            }
        }
    }

    #[test]
    fn cidr_matches_v4_v6_and_mapped_addresses() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.47.8.150".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        let v6 = Cidr::parse("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("1.2.3.4").unwrap().prefix, 32);
    }

    #[test]
    fn literals_compare_like_users_expect() {
        assert!(Literal::Num(22.0).matches(&Val::Str("22".into())));
        assert!(Literal::Str("22".into()).matches(&Val::Num(22.0)));
        assert!(Literal::Str("tcp".into()).matches(&Val::Str("tcp".into())));
        assert!(!Literal::Str("TCP".into()).matches(&Val::Str("tcp".into())));
        assert!(Literal::Bool(true).matches(&Val::Bool(true)));
        assert_eq!(format_number(22.0), "22");
        assert_eq!(format_number(0.5), "0.5");
    }
}
