//! Log events as Elastic Common Schema documents (`log_format = "ecs"`), so that Filebeat,
//! Elastic Agent or any ECS pipeline takes the audit lines as they are (pure: the I/O edge,
//! [`crate::io::logging`], collects the fields and writes the line).
//!
//! Every document has `@timestamp`, `log.level`, `log.logger`, `message` and `ecs.version`.
//! An audit field with an ECS meaning takes its ECS name ([`FIELD_NAMES`]); the others go under
//! `tcpreset.`. A connection reset is `event.kind: event`, `event.category: [network]`,
//! `event.type: [denied, end]`, `event.action: tcp-reset`; rule changes are configuration
//! events (`event.action: rule-added`, ...). The names are checked against ECS's own field list
//! (`tests/data/ecs-fields.csv`: the rows of the names used here, from elastic/ecs
//! `generated/csv/fields.csv` at tag v9.4.0).
use serde_json::{Map, Value};

/// The ECS release the documents follow.
pub const ECS_VERSION: &str = "9.4.0";

/// Our audit fields and their ECS names.
pub const FIELD_NAMES: &[(&str, &str)] = &[
    ("engid", "rule.id"),
    ("community_id", "network.community_id"),
    ("peer_ip", "source.ip"),
    ("peer_port", "source.port"),
    ("end_ip", "destination.ip"),
    ("end_port", "destination.port"),
    ("vlan", "network.vlan.id"),
    ("inner_vlan", "network.inner.vlan.id"),
    ("sniff_if", "observer.ingress.interface.name"),
    ("reset_if", "observer.egress.interface.name"),
];

/// Fields an ECS document leaves out: said otherwise already (`end`, `peer`: the 4-tuple;
/// `event`: `event.action`).
const DROPPED: &[&str] = &["end", "peer", "event", "message"];

/// ECS keyword fields whose values we log as numbers.
const KEYWORDS: &[&str] = &["network.vlan.id", "network.inner.vlan.id"];

/// One log event as the edge collected it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// RFC 3339 with milliseconds, UTC.
    pub timestamp: &'a str,
    /// `trace` .. `error`.
    pub level: &'a str,
    /// The module that logged it.
    pub target: &'a str,
    pub message: &'a str,
    /// The structured fields, in the order they were given.
    pub fields: &'a [(&'a str, Value)],
}

/// The ECS document of `event`, nested by the dots of its names.
pub fn document(event: &Event<'_>) -> Value {
    let mut doc = Map::new();
    put(&mut doc, "@timestamp", event.timestamp.into());
    put(&mut doc, "log.level", event.level.into());
    put(&mut doc, "log.logger", event.target.into());
    put(&mut doc, "message", event.message.into());
    put(&mut doc, "ecs.version", ECS_VERSION.into());
    let kind = event
        .fields
        .iter()
        .find(|(name, _)| *name == "event")
        .and_then(|(_, v)| v.as_str());
    if let Some(kind) = kind {
        for (name, value) in categorize(kind) {
            put(&mut doc, name, value);
        }
    }
    for (name, value) in event.fields {
        if DROPPED.contains(name) {
            continue;
        }
        match FIELD_NAMES.iter().find(|(ours, _)| ours == name) {
            Some((_, ecs)) if KEYWORDS.contains(ecs) => {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                put(&mut doc, ecs, text.into());
            }
            Some((_, ecs)) => put(&mut doc, ecs, value.clone()),
            None => put(&mut doc, &format!("tcpreset.{name}"), value.clone()),
        }
    }
    Value::Object(doc)
}

/// The `event.*` (and `network.transport`) fields of an audit event named `kind`.
fn categorize(kind: &str) -> Vec<(&'static str, Value)> {
    let list = |items: &[&str]| Value::from(items.to_vec());
    if kind == "connection reset" {
        return vec![
            ("event.kind", "event".into()),
            ("event.category", list(&["network"])),
            ("event.type", list(&["denied", "end"])),
            ("event.action", "tcp-reset".into()),
            ("event.outcome", "success".into()),
            ("network.transport", "tcp".into()),
        ];
    }
    let action: String = kind
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let mut fields = vec![
        ("event.kind", "event".into()),
        ("event.action", action.into()),
    ];
    if let Some(rule_change) = kind.strip_prefix("rule ") {
        let (kind, outcome) = match rule_change.split(' ').next() {
            Some("added" | "restored") => ("creation", "success"),
            Some("refreshed") => ("change", "success"),
            Some("cancelled" | "expired") => ("deletion", "success"),
            Some("refused") => ("denied", "failure"),
            _ => ("info", "success"),
        };
        fields.push(("event.category", list(&["configuration"])));
        fields.push(("event.type", list(&[kind])));
        fields.push(("event.outcome", outcome.into()));
    }
    fields
}

/// Sets `doc[a][b][c] = value` for `name` "a.b.c" (`@timestamp` has no dot).
fn put(doc: &mut Map<String, Value>, name: &str, value: Value) {
    let mut parts = name.split('.').peekable();
    let mut at = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_owned(), value);
            return;
        }
        let next = at
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        at = next.as_object_mut().expect("an object");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The ECS field names of the reference list.
    fn reference() -> Vec<String> {
        let csv = include_str!("../tests/data/ecs-fields.csv");
        let mut lines = csv.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let column = head.iter().position(|h| *h == "Field").unwrap();
        lines
            .map(|l| l.split(',').nth(column).unwrap().to_owned())
            .collect()
    }

    /// Every leaf of `doc` as a dotted name.
    fn names(prefix: &str, doc: &Value, out: &mut Vec<String>) {
        match doc {
            Value::Object(m) => {
                for (k, v) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    names(&name, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    fn reset_event() -> Vec<(&'static str, Value)> {
        vec![
            ("event", json!("connection reset")),
            ("engid", json!("ids-2024")),
            ("community_id", json!("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")),
            ("peer_ip", json!("66.35.250.204")),
            ("peer_port", json!(80)),
            ("end_ip", json!("128.232.110.120")),
            ("end_port", json!(34855)),
            ("vlan", json!(100)),
            ("inner_vlan", json!(20)),
            ("sniff_if", json!("eth1")),
            ("reset_if", json!("eth0")),
            ("end", json!("128.232.110.120:34855")),
            ("peer", json!("66.35.250.204:80")),
        ]
    }

    #[test]
    fn a_connection_reset_is_an_ecs_network_event_with_every_name_in_the_reference() {
        let fields = reset_event();
        let doc = document(&Event {
            timestamp: "2026-11-22T12:03:05.123Z",
            level: "info",
            target: "tcpreset::io::capture",
            message: "connection reset",
            fields: &fields,
        });
        assert_eq!(doc["event"]["kind"], "event");
        assert_eq!(doc["event"]["category"], json!(["network"]));
        assert_eq!(doc["event"]["type"], json!(["denied", "end"]));
        assert_eq!(doc["event"]["action"], "tcp-reset");
        assert_eq!(doc["event"]["outcome"], "success");
        assert_eq!(doc["rule"]["id"], "ids-2024");
        assert_eq!(
            doc["network"]["community_id"],
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(doc["network"]["transport"], "tcp");
        assert_eq!(doc["network"]["vlan"]["id"], "100", "a keyword");
        assert_eq!(doc["network"]["inner"]["vlan"]["id"], "20");
        assert_eq!(doc["source"], json!({"ip": "66.35.250.204", "port": 80}));
        assert_eq!(
            doc["destination"],
            json!({"ip": "128.232.110.120", "port": 34855})
        );
        assert_eq!(doc["observer"]["ingress"]["interface"]["name"], "eth1");
        assert_eq!(doc["observer"]["egress"]["interface"]["name"], "eth0");
        assert_eq!(doc["@timestamp"], "2026-11-22T12:03:05.123Z");
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        let mut used = Vec::new();
        names("", &doc, &mut used);
        let reference = reference();
        for name in &used {
            assert!(reference.contains(name), "{name} is not an ECS field");
        }
        assert_eq!(used.len(), reference.len(), "{used:?}");
    }

    #[test]
    fn rule_changes_are_configuration_events_and_other_fields_are_ours() {
        let fields = vec![
            ("event", json!("rule added")),
            ("engid", json!("ids")),
            ("host", json!("10.0.0.1")),
            ("sniff_if", json!("eth1")),
        ];
        let doc = document(&Event {
            timestamp: "t",
            level: "info",
            target: "x",
            message: "rule added",
            fields: &fields,
        });
        assert_eq!(doc["event"]["action"], "rule-added");
        assert_eq!(doc["event"]["category"], json!(["configuration"]));
        assert_eq!(doc["event"]["type"], json!(["creation"]));
        assert_eq!(doc["rule"]["id"], "ids");
        assert_eq!(doc["tcpreset"]["host"], "10.0.0.1");
        let refused = [("event", json!("rule refused"))];
        let doc = document(&Event {
            fields: &refused,
            ..Event {
                timestamp: "t",
                level: "warn",
                target: "x",
                message: "m",
                fields: &[],
            }
        });
        assert_eq!(doc["event"]["outcome"], "failure");
        assert!(FIELD_NAMES
            .iter()
            .all(|(_, ecs)| reference().iter().any(|r| r == ecs)));
    }
}
