//! Log formats and the canonical field names (`srcip`, `state`, ...) mapped onto each format's own.
//!
//! A playbook names fields once; for each file the [`FieldPlan`] says which native paths to read
//! into record slots and how each named field is computed from them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::json::paths::lookup_json;
use super::value::{val_to_json, Val};

/// What the records of a log file describe, which decides the field mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Suricata EVE JSON (`event_type` alert, flow, ...).
    Suricata,
    /// Zeek `conn.log`, JSON or TSV with a `#fields` header.
    Zeek,
    /// Any other NDJSON: canonical names are read as written.
    Ndjson,
}

/// How one named field is computed from the record's slots.
#[derive(Debug, Clone, PartialEq)]
pub enum Accessor {
    Slot(usize),
    LowerCase(usize),
    ZeekState(usize),
    SuricataState { tcp_state: usize, tcp_rst: usize },
    Absent,
}

/// For one format: the native paths to capture (by slot) and an accessor per named field.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub format: Format,
    pub paths: Vec<String>,
    pub accessors: Vec<Accessor>,
}

impl FieldPlan {
    /// Plans the fields `names` (in playbook order; index = field id) for `format`.
    pub fn new(format: Format, names: &[String]) -> FieldPlan {
        let mut plan = FieldPlan {
            format,
            paths: Vec::new(),
            accessors: Vec::new(),
        };
        for name in names {
            let accessor = plan.accessor_for(name);
            plan.accessors.push(accessor);
        }
        plan
    }

    fn slot(&mut self, path: &str) -> usize {
        match self.paths.iter().position(|p| p == path) {
            Some(i) => i,
            None => {
                self.paths.push(path.to_string());
                self.paths.len() - 1
            }
        }
    }

    fn accessor_for(&mut self, name: &str) -> Accessor {
        let native = |suricata: &'static str, zeek: &'static str| match self.format {
            Format::Suricata => suricata,
            Format::Zeek => zeek,
            Format::Ndjson => "",
        };
        let mapped = match name {
            "srcip" => native("src_ip", "id.orig_h"),
            "dstip" => native("dest_ip", "id.resp_h"),
            "srcport" => native("src_port", "id.orig_p"),
            "dstport" => native("dest_port", "id.resp_p"),
            "timestamp" => native("timestamp", "ts"),
            "engid" => native("alert.signature_id", "-"),
            "event_name" => native("alert.signature", "-"),
            "proto" if self.format == Format::Suricata => {
                return Accessor::LowerCase(self.slot("proto"))
            }
            "state" => match self.format {
                Format::Zeek => return Accessor::ZeekState(self.slot("conn_state")),
                Format::Suricata => {
                    let tcp_state = self.slot("tcp.state");
                    let tcp_rst = self.slot("tcp.rst");
                    return Accessor::SuricataState { tcp_state, tcp_rst };
                }
                Format::Ndjson => "",
            },
            _ => "",
        };
        match mapped {
            "" => Accessor::Slot(self.slot(name)),
            "-" => Accessor::Absent,
            path => Accessor::Slot(self.slot(path)),
        }
    }

    /// The value of field `field` in a record whose captured slots are `slots`.
    pub fn get<'a>(&self, field: usize, slots: &[Option<Val<'a>>]) -> Option<Val<'a>> {
        match &self.accessors[field] {
            Accessor::Slot(i) => slots[*i].clone(),
            Accessor::LowerCase(i) => match slots[*i].as_ref()? {
                Val::Str(s) => Some(Val::Str(lower_proto(s))),
                other => Some(other.clone()),
            },
            Accessor::ZeekState(i) => match slots[*i].as_ref()? {
                Val::Str(s) => Some(Val::Str(Cow::Borrowed(zeek_state(s)))),
                _ => None,
            },
            Accessor::SuricataState { tcp_state, tcp_rst } => {
                let Some(Val::Str(state)) = slots[*tcp_state].as_ref() else {
                    return None;
                };
                let rst = matches!(slots[*tcp_rst], Some(Val::Bool(true)));
                Some(Val::Str(Cow::Borrowed(suricata_state(state, rst))))
            }
            Accessor::Absent => None,
        }
    }
}

fn lower_proto(s: &str) -> Cow<'static, str> {
    match s {
        "TCP" | "tcp" => Cow::Borrowed("tcp"),
        "UDP" | "udp" => Cow::Borrowed("udp"),
        "ICMP" | "icmp" => Cow::Borrowed("icmp"),
        "IPv6-ICMP" => Cow::Borrowed("ipv6-icmp"),
        "SCTP" => Cow::Borrowed("sctp"),
        other => Cow::Owned(other.to_ascii_lowercase()),
    }
}

/// Canonical `state` of a Zeek `conn_state`.
pub fn zeek_state(conn_state: &str) -> &'static str {
    match conn_state {
        "S0" | "SH" | "RSTOS0" => "HalfOpened",
        "REJ" => "Rejected",
        "RSTR" | "RSTRH" => "ResponderReset",
        "RSTO" => "OriginatorReset",
        "S1" => "Established",
        "S2" | "S3" => "Closing",
        "SF" => "Closed",
        _ => "Other",
    }
}

/// Canonical `state` of a Suricata flow's `tcp.state` (and whether it saw a RST).
pub fn suricata_state(tcp_state: &str, rst: bool) -> &'static str {
    match tcp_state {
        "syn_sent" | "syn_recv" => "HalfOpened",
        "established" => "Established",
        "fin_wait1" | "fin_wait2" | "time_wait" | "last_ack" | "close_wait" | "closing" => {
            "Closing"
        }
        "closed" if rst => "Reset",
        "closed" => "Closed",
        _ => "Other",
    }
}

/// The canonical names a playbook may use for any format.
pub const CANONICAL_NAMES: [&str; 9] = [
    "srcip",
    "dstip",
    "srcport",
    "dstport",
    "timestamp",
    "engid",
    "event_name",
    "proto",
    "state",
];

/// A whole record as a template sees it: its own fields (native names), the canonical names it
/// maps to (where the record has no field of that name itself), and `_source` (the record).
pub fn record_bindings(source: &Json) -> Json {
    let mut frame = source.as_object().cloned().unwrap_or_default();
    let names: Vec<String> = CANONICAL_NAMES.iter().map(|n| n.to_string()).collect();
    let plan = FieldPlan::new(detect_json_format(source), &names);
    let slots: Vec<Option<Val<'_>>> = plan
        .paths
        .iter()
        .map(|path| lookup_json(source, path).map(Val::from_json))
        .collect();
    for (field, name) in names.into_iter().enumerate() {
        if frame.contains_key(&name) {
            continue;
        }
        if let Some(value) = plan.get(field, &slots) {
            frame.insert(name, val_to_json(value));
        }
    }
    frame.insert("_source".into(), source.clone());
    Json::Object(frame)
}

/// Guesses the format of a JSON record: EVE has `event_type`, Zeek has `id.orig_h` or `uid`.
pub fn detect_json_format(record: &Json) -> Format {
    match record {
        Json::Object(map) if map.contains_key("event_type") => Format::Suricata,
        Json::Object(map) if map.contains_key("id.orig_h") || map.contains_key("conn_state") => {
            Format::Zeek
        }
        _ => Format::Ndjson,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn canonical_names_map_per_format_and_native_names_stay_usable() {
        let fields = names(&["timestamp", "srcip", "state", "id.orig_h", "engid"]);
        let zeek = FieldPlan::new(Format::Zeek, &fields);
        assert_eq!(zeek.paths, ["ts", "id.orig_h", "conn_state"]);
        assert_eq!(zeek.accessors[3], Accessor::Slot(1));
        assert_eq!(zeek.accessors[4], Accessor::Absent);
        let eve = FieldPlan::new(Format::Suricata, &fields);
        assert_eq!(
            eve.paths,
            [
                "timestamp",
                "src_ip",
                "tcp.state",
                "tcp.rst",
                "id.orig_h",
                "alert.signature_id"
            ]
        );
        let generic = FieldPlan::new(Format::Ndjson, &fields);
        assert_eq!(
            generic.paths,
            ["timestamp", "srcip", "state", "id.orig_h", "engid"]
        );
    }

    #[test]
    fn states_follow_the_documented_table() {
        for s in ["S0", "SH", "RSTOS0"] {
            assert_eq!(zeek_state(s), "HalfOpened");
        }
        assert_eq!(zeek_state("REJ"), "Rejected");
        assert_eq!(zeek_state("SF"), "Closed");
        assert_eq!(suricata_state("syn_sent", false), "HalfOpened");
        assert_eq!(suricata_state("syn_recv", false), "HalfOpened");
        assert_eq!(suricata_state("closed", true), "Reset");
        let plan = FieldPlan::new(Format::Suricata, &names(&["state", "proto"]));
        let slots = vec![
            Some(Val::Str("closed".into())),
            Some(Val::Bool(true)),
            Some(Val::Str("TCP".into())),
        ];
        assert_eq!(plan.get(0, &slots), Some(Val::Str("Reset".into())));
        assert_eq!(plan.get(1, &slots), Some(Val::Str("tcp".into())));
    }
}
