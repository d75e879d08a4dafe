//! The fields each declared log format writes (Zeek `conn.log`, Suricata EVE), so that `check` can
//! say when a playbook names a field its records never carry (a typo such as `srcipp`).
//!
//! The lists are what the formats document; a sensor may add more (Zeek packages, new EVE event
//! types), so a field outside them is a warning, not a refusal.

use crate::playbook::record::format::{Accessor, FieldPlan, Format, CANONICAL_NAMES};

/// The keys of a JSON object as a format writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Any key may appear below (an object whose keys vary, such as `alert.metadata`).
    Open,
    /// A single value: nothing below it.
    Leaf,
    Object(&'static [(&'static str, Schema)]),
}

use Schema::{Leaf, Object, Open};

/// Zeek's `conn.log`, base fields and the optional ones of the packages Zeek ships
/// (community-id, mac-logging, vlan-logging, speculative service, shunting). Zeek writes
/// `id.orig_h` as one dotted key.
const ZEEK_CONN: &[(&str, Schema)] = &[
    ("ts", Leaf),
    ("uid", Leaf),
    ("id.orig_h", Leaf),
    ("id.orig_p", Leaf),
    ("id.resp_h", Leaf),
    ("id.resp_p", Leaf),
    ("proto", Leaf),
    ("service", Leaf),
    ("duration", Leaf),
    ("orig_bytes", Leaf),
    ("resp_bytes", Leaf),
    ("conn_state", Leaf),
    ("local_orig", Leaf),
    ("local_resp", Leaf),
    ("missed_bytes", Leaf),
    ("history", Leaf),
    ("orig_pkts", Leaf),
    ("orig_ip_bytes", Leaf),
    ("resp_pkts", Leaf),
    ("resp_ip_bytes", Leaf),
    ("tunnel_parents", Leaf),
    ("ip_proto", Leaf),
    ("community_id", Leaf),
    ("orig_l2_addr", Leaf),
    ("resp_l2_addr", Leaf),
    ("vlan", Leaf),
    ("inner_vlan", Leaf),
    ("speculative_service", Leaf),
    ("app", Leaf),
    ("orig_shunted_pkts", Leaf),
    ("orig_shunted_bytes", Leaf),
    ("resp_shunted_pkts", Leaf),
    ("resp_shunted_bytes", Leaf),
];

const EVE_ALERT: &[(&str, Schema)] = &[
    ("action", Leaf),
    ("gid", Leaf),
    ("signature_id", Leaf),
    ("rev", Leaf),
    ("signature", Leaf),
    ("category", Leaf),
    ("severity", Leaf),
    ("tx_id", Leaf),
    ("metadata", Open),
    ("source", Open),
    ("target", Open),
    ("xff", Leaf),
    ("rule", Leaf),
];

const EVE_FLOW: &[(&str, Schema)] = &[
    ("pkts_toserver", Leaf),
    ("pkts_toclient", Leaf),
    ("bytes_toserver", Leaf),
    ("bytes_toclient", Leaf),
    ("start", Leaf),
    ("end", Leaf),
    ("age", Leaf),
    ("state", Leaf),
    ("reason", Leaf),
    ("alerted", Leaf),
    ("action", Leaf),
    ("bypass", Leaf),
    ("bypassed", Open),
    ("emergency", Leaf),
    ("wrong_thread", Leaf),
    ("exception_policy", Open),
    ("src_ip", Leaf),
    ("dest_ip", Leaf),
    ("src_port", Leaf),
    ("dest_port", Leaf),
    ("tx_cnt", Leaf),
    ("elephant", Leaf),
];

const EVE_TCP: &[(&str, Schema)] = &[
    ("tcp_flags", Leaf),
    ("tcp_flags_ts", Leaf),
    ("tcp_flags_tc", Leaf),
    ("syn", Leaf),
    ("fin", Leaf),
    ("rst", Leaf),
    ("psh", Leaf),
    ("ack", Leaf),
    ("urg", Leaf),
    ("ecn", Leaf),
    ("cwr", Leaf),
    ("state", Leaf),
    ("ts_max_regions", Leaf),
    ("tc_max_regions", Leaf),
];

/// Suricata EVE: the common fields of every event, then one object per event type. Only
/// `alert`, `flow` and `tcp` list their keys; the application-layer objects vary by version.
const EVE: &[(&str, Schema)] = &[
    ("timestamp", Leaf),
    ("flow_id", Leaf),
    ("parent_id", Leaf),
    ("pcap_cnt", Leaf),
    ("pcap_filename", Leaf),
    ("event_type", Leaf),
    ("vlan", Open),
    ("in_iface", Leaf),
    ("src_ip", Leaf),
    ("src_port", Leaf),
    ("dest_ip", Leaf),
    ("dest_port", Leaf),
    ("proto", Leaf),
    ("ip_v", Leaf),
    ("icmp_type", Leaf),
    ("icmp_code", Leaf),
    ("response_icmp_type", Leaf),
    ("response_icmp_code", Leaf),
    ("pkt_src", Leaf),
    ("direction", Leaf),
    ("app_proto", Leaf),
    ("app_proto_tc", Leaf),
    ("app_proto_ts", Leaf),
    ("app_proto_orig", Leaf),
    ("app_proto_expected", Leaf),
    ("community_id", Leaf),
    ("tx_id", Leaf),
    ("tx_guessed", Leaf),
    ("tenant_id", Leaf),
    ("host", Leaf),
    ("payload", Leaf),
    ("payload_printable", Leaf),
    ("payload_length", Leaf),
    ("packet", Leaf),
    ("stream", Leaf),
    ("ether", Open),
    ("packet_info", Open),
    ("capture", Open),
    ("metadata", Open),
    ("vars", Open),
    ("verdict", Open),
    ("alert", Object(EVE_ALERT)),
    ("flow", Object(EVE_FLOW)),
    ("tcp", Object(EVE_TCP)),
    ("anomaly", Open),
    ("netflow", Open),
    ("stats", Open),
    ("drop", Open),
    ("http", Open),
    ("http2", Open),
    ("dns", Open),
    ("tls", Open),
    ("ssh", Open),
    ("smtp", Open),
    ("email", Open),
    ("fileinfo", Open),
    ("files", Open),
    ("smb", Open),
    ("nfs", Open),
    ("ftp", Open),
    ("ftp_data", Open),
    ("tftp", Open),
    ("dhcp", Open),
    ("krb5", Open),
    ("ike", Open),
    ("snmp", Open),
    ("sip", Open),
    ("rdp", Open),
    ("rfb", Open),
    ("mqtt", Open),
    ("modbus", Open),
    ("dnp3", Open),
    ("enip", Open),
    ("quic", Open),
    ("pgsql", Open),
    ("websocket", Open),
    ("ldap", Open),
    ("dcerpc", Open),
    ("bittorrent_dht", Open),
    ("arp", Open),
    ("frame", Open),
    ("diameter", Open),
];

/// The records of `format` as a schema; `None` for a format with no fixed fields (NDJSON).
pub fn record_schema(format: Format) -> Option<Schema> {
    match format {
        Format::Zeek => Some(Object(ZEEK_CONN)),
        Format::Suricata => Some(Object(EVE)),
        Format::Ndjson => None,
    }
}

/// What a format's records are called in messages.
pub fn format_label(format: Format) -> &'static str {
    match format {
        Format::Zeek => "Zeek conn.log",
        Format::Suricata => "Suricata EVE",
        Format::Ndjson => "NDJSON",
    }
}

/// Whether the key `key` of an object of `schema` may be present, and the schema of its value.
/// Zeek's logs may carry keys of their writer (`_path`, `_write_ts`, `_node_name`).
pub fn key_schema(schema: Schema, key: &str, zeek: bool) -> Option<Schema> {
    match schema {
        Open => Some(Open),
        Leaf => None,
        Object(keys) => keys
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| *s)
            .or_else(|| (zeek && key.starts_with('_')).then_some(Leaf)),
    }
}

/// Whether `path` may name a value of a record of `schema`, read as the readers read it: the
/// literal dotted key first, then nested objects at every split of its dots.
fn knows(schema: Schema, path: &str, zeek: bool) -> bool {
    if key_schema(schema, path, zeek).is_some() {
        return true;
    }
    path.match_indices('.').any(|(i, _)| {
        key_schema(schema, &path[..i], zeek).is_some_and(|inner| knows(inner, &path[i + 1..], zeek))
    })
}

/// The keys of `schema`, for a message.
fn keys(schema: Schema) -> String {
    match schema {
        Object(keys) => keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
        Open | Leaf => String::new(),
    }
}

/// Checks a query or calculation field (canonical or native) against the declared `format`:
/// `Err` says why its records never carry it and which names they do carry.
pub fn check_field(format: Format, name: &str) -> Result<(), String> {
    let name = name.strip_prefix("_source.").unwrap_or(name);
    let name = name.strip_suffix(".keyword").unwrap_or(name);
    let Some(schema) = record_schema(format) else {
        return Ok(());
    };
    let label = format_label(format);
    if CANONICAL_NAMES.contains(&name) {
        let plan = FieldPlan::new(format, &[name.to_string()]);
        return match plan.accessors[0] {
            Accessor::Absent => Err(format!(
                "`{name}` has no value in {label} records (only Suricata EVE alerts carry it); remove it or read a Suricata EVE source"
            )),
            _ => Ok(()),
        };
    }
    let zeek = format == Format::Zeek;
    if knows(schema, name, zeek) {
        return Ok(());
    }
    let canonical = CANONICAL_NAMES
        .iter()
        .filter(|c| check_field(format, c).is_ok())
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    // Inside a known object, list that object's keys; otherwise the record's.
    let inner = name
        .match_indices('.')
        .find_map(|(i, _)| Some((&name[..i], key_schema(schema, &name[..i], zeek)?)))
        .filter(|(_, s)| matches!(s, Object(_)));
    let available = match inner {
        Some((object, s)) => format!("`{object}` holds {}", keys(s)),
        None => format!("they hold {}", keys(schema)),
    };
    Err(format!(
        "`{name}` is not a field of {label} records; {available}; canonical names: {canonical} (if your records do carry it, ignore this)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_native_and_nested_names_are_known_per_format() {
        for name in ["srcip", "state", "id.orig_h", "conn_state", "_path", "ts"] {
            assert_eq!(check_field(Format::Zeek, name), Ok(()), "{name}");
        }
        for name in [
            "srcip.keyword",
            "engid",
            "alert.severity",
            "alert.metadata.tag",
            "dns.rrname",
            "tcp.rst",
        ] {
            assert_eq!(check_field(Format::Suricata, name), Ok(()), "{name}");
        }
        assert_eq!(check_field(Format::Ndjson, "anything.at.all"), Ok(()));
    }

    #[test]
    fn typos_and_absent_names_say_what_the_records_hold() {
        let e = check_field(Format::Zeek, "srcipp").unwrap_err();
        assert!(
            e.contains("`srcipp` is not a field of Zeek conn.log records"),
            "{e}"
        );
        assert!(
            e.contains("id.orig_h") && e.contains("canonical names: srcip"),
            "{e}"
        );
        assert!(!e.contains("engid"), "engid has no value in Zeek: {e}");
        let e = check_field(Format::Zeek, "engid").unwrap_err();
        assert!(e.contains("no value in Zeek conn.log records"), "{e}");
        let e = check_field(Format::Suricata, "alert.signatur").unwrap_err();
        assert!(e.contains("`alert` holds action, gid, signature_id"), "{e}");
        assert!(check_field(Format::Suricata, "src_ip.x").is_err());
    }
}
