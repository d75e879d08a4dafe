//! Small pieces of the OpenSearch query DSL, and the regular expression that matches the text
//! of every address of a network, so `within` works on keyword-mapped address fields.

use std::net::IpAddr;

use serde_json::{json, Value as Json};

use crate::net::Cidr;

pub fn not(q: Json) -> Json {
    json!({ "bool": { "must_not": [q] } })
}

pub fn any(list: Vec<Json>) -> Json {
    json!({ "bool": { "should": list, "minimum_should_match": 1 } })
}

pub fn match_all() -> Json {
    json!({ "match_all": {} })
}

pub fn match_none() -> Json {
    json!({ "match_none": {} })
}

/// A Lucene regular expression (anchored, as `regexp` queries are) matching exactly the
/// texts of the addresses in `net` as Zeek and Suricata print them: dotted decimal for IPv4;
/// for IPv6, lower-case hex groups with or without leading zeros. IPv6 networks whose fixed
/// groups include a zero group (which `::` may hide) or that fix a group below `0x1000` (whose
/// digit count varies) are refused with the reason.
pub fn ip_regexp(net: &Cidr) -> Result<String, String> {
    match net.addr {
        IpAddr::V4(a) => Ok(v4_regexp(a.octets(), net.prefix)),
        IpAddr::V6(a) => v6_regexp(a.segments(), net.prefix),
    }
}

fn v4_regexp(octets: [u8; 4], prefix: u8) -> String {
    let any_octet = "[0-9]{1,3}";
    let mut parts = Vec::new();
    for (i, octet) in octets.iter().enumerate() {
        let fixed_bits = (prefix as usize).saturating_sub(i * 8).min(8);
        parts.push(match fixed_bits {
            8 => octet.to_string(),
            0 => any_octet.to_string(),
            bits => {
                let span = 1u16 << (8 - bits);
                let base = u16::from(*octet) & !(span - 1);
                let values: Vec<String> = (base..base + span).map(|v| v.to_string()).collect();
                format!("({})", values.join("|"))
            }
        });
    }
    parts.join("\\.")
}

fn v6_regexp(groups: [u16; 8], prefix: u8) -> Result<String, String> {
    let nibble_class = |fixed_bits: usize, nibble: u16| -> String {
        match fixed_bits {
            4 => format!("{nibble:x}"),
            0 => "[0-9a-f]".into(),
            bits => {
                let span = 1u16 << (4 - bits);
                let base = nibble & !(span - 1);
                format!(
                    "[{}]",
                    (base..base + span)
                        .map(|v| format!("{v:x}"))
                        .collect::<String>()
                )
            }
        }
    };
    let whole_groups = prefix as usize / 16;
    let mut re = String::new();
    for (i, g) in groups.iter().enumerate().take(whole_groups) {
        if *g == 0 {
            return Err(format!("its group {} is zero, which `::` may hide in the logged text; map the field as `ip` to test networks like this one", i + 1));
        }
        re += &format!("0{{0,3}}{g:x}:");
    }
    let bits = prefix as usize % 16;
    if bits > 0 {
        let g = groups[whole_groups];
        if g & 0xf000 == 0 || (bits < 4 && g & 0xf000 & !((1u16 << (16 - bits)) - 1) == 0) {
            return Err("it fixes a group below 0x1000, whose digit count varies in the logged text; map the field as `ip` to test networks like this one".into());
        }
        for n in 0..4 {
            let nibble = (g >> (12 - 4 * n)) & 0xf;
            re += &nibble_class(bits.saturating_sub(4 * n).min(4), nibble);
        }
        re += ":";
    }
    if prefix == 128 {
        return Err(
            "a single IPv6 host has several texts; map the field as `ip`, or test it with `is`"
                .into(),
        );
    }
    // Any further groups (or `::`): at least a hex digit or a colon follows.
    Ok(format!("{re}[0-9a-f:.]*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(net: &str) -> String {
        ip_regexp(&net.parse().unwrap()).unwrap_or_else(|e| format!("refused: {e}"))
    }

    #[test]
    fn networks_become_the_regexps_of_their_texts() {
        assert_eq!(
            re("10.0.0.0/8"),
            "10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"
        );
        assert_eq!(
            re("172.16.0.0/12"),
            "172\\.(16|17|18|19|20|21|22|23|24|25|26|27|28|29|30|31)\\.[0-9]{1,3}\\.[0-9]{1,3}"
        );
        assert_eq!(re("192.0.2.7/32"), "192\\.0\\.2\\.7");
        assert_eq!(re("fc00::/7"), "f[cd][0-9a-f][0-9a-f]:[0-9a-f:.]*");
        assert_eq!(re("fe80::/10"), "fe[89ab][0-9a-f]:[0-9a-f:.]*");
        assert_eq!(re("2001:db8::/32"), "0{0,3}2001:0{0,3}db8:[0-9a-f:.]*");
        assert!(re("2001:0:1::/48").starts_with("refused: its group 2 is zero"));
        assert!(re("::/0").contains("[0-9a-f:.]*"));
    }
}
