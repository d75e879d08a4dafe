//! Log timestamps: epoch seconds and RFC 3339-like text, in microseconds since the Unix epoch.

use super::value::Val;

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
    use std::borrow::Cow;

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
}
