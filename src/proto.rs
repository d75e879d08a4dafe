//! The control socket's protocol: versioned JSON requests and responses, one per line.
//!
//! The daemon checks every request with the same rules as the client ([`crate::syntax`]):
//! the socket is an API and trusts no client.
use crate::rules::{Rule, RuleKey, RuleSpec};
use crate::syntax::{self, Invalid};
use crate::time::Instant;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Requests larger than this are refused (a line of JSON).
pub const MAX_REQUEST_LEN: usize = 16 * 1024;

/// A request line: `{"v":1,"op":"add",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Registers a rule, or refreshes the rule with the same key.
    Add(AddRequest),
    /// Lists the live rules.
    List,
    /// Removes one rule.
    Cancel(KeyRequest),
    /// Removes every rule.
    Flush,
    /// Daemon-wide counters.
    Stats,
    /// The connections the matching rules have reset.
    Show(ShowRequest),
}

/// Selects rules by engid and/or host (both absent: every rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowRequest {
    #[serde(default)]
    pub engid: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

/// The fields of `tcpreset ENGID -i SNIFF_IF -o RESET_IF -h HOST [-p PORT] -d SECONDS`, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    pub engid: String,
    pub sniff_if: String,
    pub reset_if: String,
    pub host: String,
    #[serde(default)]
    pub port: Option<String>,
    pub seconds: String,
}

/// The rule key named by the text of `ENGID -h HOST [-p PORT]`, checked.
fn rule_key(engid: &str, host: &str, port: Option<&str>) -> Result<RuleKey, Invalid> {
    Ok(RuleKey {
        engid: syntax::engid(engid)?,
        host: syntax::host(host)?,
        port: port.map(syntax::port).transpose()?,
    })
}

impl AddRequest {
    /// The rule this request asks for, every field checked.
    pub fn to_spec(&self) -> Result<RuleSpec, Invalid> {
        Ok(RuleSpec {
            key: rule_key(&self.engid, &self.host, self.port.as_deref())?,
            sniff_if: syntax::interface(&self.sniff_if)?,
            reset_if: syntax::interface(&self.reset_if)?,
            duration: syntax::seconds(&self.seconds)?,
        })
    }
}

/// Names a rule: `ENGID -h HOST [-p PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    pub engid: String,
    pub host: String,
    #[serde(default)]
    pub port: Option<String>,
}

impl KeyRequest {
    /// The key of the rule this request names, checked.
    pub fn to_key(&self) -> Result<RuleKey, Invalid> {
        rule_key(&self.engid, &self.host, self.port.as_deref())
    }
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Added {
        rule: RuleView,
        refreshed: bool,
        /// When the rule's sniff interface began to be captured, if that is too recent for the
        /// daemon to know every open connection there (seconds since the Unix epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracked_since_unix: Option<f64>,
    },
    Rules {
        rules: Vec<RuleView>,
    },
    Cancelled {
        rule: RuleView,
    },
    Flushed {
        count: usize,
    },
    Stats {
        stats: StatsView,
    },
    Shown {
        rules: Vec<RuleResets>,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// Why the daemon refused a request; the client turns each into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or a value breaks a rule.
    BadRequest,
    /// An interface is unknown, down, or (reset) without an address, as the daemon sees it.
    Interface,
    /// The rule to cancel does not exist.
    NotFound,
    /// The daemon could not start what the rule needs (capture, injection socket).
    Unavailable,
    /// The host is protected by the configuration or is the sensor itself.
    Protected,
    /// A configured limit (rules alive, longest duration) refuses the rule.
    Limit,
    /// The peer's user is not allowed to use the socket.
    Unauthorized,
}

/// Daemon-wide counters (`tcpreset stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsView {
    pub uptime_secs: f64,
    pub rules_active: usize,
    /// Flows tracked by all captures together, and the most they may hold (`max_flows`).
    #[serde(default)]
    pub flows_tracked: u64,
    #[serde(default)]
    pub max_flows: u64,
    pub rsts_sent: u64,
    pub probes_sent: u64,
    /// Connection ends that got a RST.
    pub connection_ends_reset: u64,
    pub interfaces: Vec<CaptureView>,
    /// The reset interfaces the rules name, as last probed.
    #[serde(default)]
    pub reset_interfaces: Vec<ResetIfaceView>,
    pub caps: CapsView,
    /// Whether the rules are saved.
    #[serde(default)]
    pub persistence: PersistenceView,
}

/// Saving the rules across restarts: a change that cannot be saved is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistenceView {
    /// The rules file, if the daemon saves its rules.
    pub state_file: Option<String>,
    pub saves: u64,
    pub failures: u64,
    /// The error of the last save, while saving fails.
    pub error: Option<String>,
    /// Since when saving fails, seconds since the Unix epoch.
    pub failing_since_unix: Option<f64>,
}

/// One reset interface: whether RSTs can go out of it, since when, and how many could not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResetIfaceView {
    pub iface: String,
    /// `ready`, `down`, `no-carrier`, `no-address` or `missing`.
    pub state: String,
    /// When it entered that state (or was first probed), seconds since the Unix epoch.
    pub since_unix: f64,
    /// Segments (RSTs and probes) that could not be sent through it since the daemon started.
    pub send_failures: u64,
}

/// One capture's counters, libpcap's among them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureView {
    pub iface: String,
    /// Captured without a rule (tracked: automatic, listed or named by a rule before), so it
    /// stays open when no rule needs it.
    #[serde(default)]
    pub tracked: bool,
    /// Captured since then, seconds since the Unix epoch: connections silent since before
    /// then are not known.
    #[serde(default)]
    pub since_unix: f64,
    pub frames: u64,
    pub matched: u64,
    pub rsts_sent: u64,
    pub probes_sent: u64,
    pub inject_errors: u64,
    pub flows: u64,
    pub flows_refused: u64,
    /// libpcap: received, dropped by the kernel, dropped by the interface.
    pub pcap_received: u64,
    pub pcap_dropped: u64,
    pub pcap_if_dropped: u64,
    /// Times the capture loop panicked and was restarted.
    #[serde(default)]
    pub restarts: u64,
}

/// How often each safety rail bit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapsView {
    /// RSTs not sent: the global rate cap.
    pub rate_limited: u64,
    /// RSTs not sent: the per-connection-end budget.
    pub over_budget: u64,
    /// Segments not sent to a protected peer.
    pub protected_skipped: u64,
    pub refused_max_rules: u64,
    pub refused_max_seconds: u64,
    pub refused_protected: u64,
    pub refused_unauthorized: u64,
    /// Rules refused because an interface was unknown, down, or (reset) without an address.
    #[serde(default)]
    pub refused_interface: u64,
}

/// A rule and the connection ends it reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleResets {
    pub rule: RuleView,
    /// All ends reset; `resets` keeps the newest of them.
    pub ends_reset: u64,
    pub resets: Vec<ResetView>,
}

/// One connection end that got a RST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetView {
    pub at_unix: f64,
    /// The end that was reset, `addr:port`.
    pub end: String,
    /// Its peer, `addr:port`.
    pub peer: String,
}

/// A rule as the client shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleView {
    pub engid: String,
    pub host: String,
    pub port: Option<u16>,
    pub sniff_if: String,
    pub reset_if: String,
    /// Seconds until the rule expires.
    pub seconds_left: f64,
    /// When it expires, seconds since the Unix epoch.
    pub expires_unix: f64,
    pub segments_matched: u64,
    pub rsts_sent: u64,
    /// Why the rule is not applied although it lives: its host became protected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
}

impl RuleView {
    pub fn of(rule: &Rule, now: Instant) -> Self {
        RuleView {
            engid: rule.key.engid.to_string(),
            host: rule.key.host.to_string(),
            port: rule.key.port,
            sniff_if: rule.sniff_if.to_string(),
            reset_if: rule.reset_if.to_string(),
            seconds_left: rule.expires.saturating_since(now).as_secs_f64(),
            expires_unix: rule.expires.as_secs_f64(),
            segments_matched: rule.stats.segments_matched(),
            rsts_sent: rule.stats.rsts_sent(),
            suspended: None,
        }
    }
}

/// Parses a request line, checking the version; the error is the message for a
/// [`ErrorKind::BadRequest`] answer. A field the request does not have is refused, never
/// ignored: a misspelt `port` would otherwise register a rule for every port.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("request is not JSON: {e}"))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(format!(
            "request is {}, not a JSON object; send e.g. {{\"v\":{VERSION},\"op\":\"list\"}}",
            kind_of(&value)
        ));
    };
    check_version(fields.remove("v"))?;
    let malformed = |e: &dyn std::fmt::Display| {
        format!("malformed request: {e}; send only the fields of the op, as a tcpreset client of the same release does")
    };
    // serde ignores the fields of a variant without any (list, flush, stats): check them here.
    let extra = fields.keys().find(|k| *k != "op").cloned();
    let request = serde_json::from_value::<Request>(serde_json::Value::Object(fields))
        .map_err(|e| malformed(&e))?;
    match (&request, extra) {
        (Request::List | Request::Flush | Request::Stats, Some(field)) => Err(malformed(
            &format_args!("unknown field `{field}`, this op has none"),
        )),
        _ => Ok(request),
    }
}

/// The `v` of a request must be this build's version, as a whole number.
fn check_version(v: Option<serde_json::Value>) -> Result<(), String> {
    let fix =
        format!("use a tcpreset client of the same release (this daemon speaks \"v\":{VERSION})");
    let Some(v) = v else {
        return Err(format!("protocol version \"v\" is missing; {fix}"));
    };
    match v.as_u64() {
        Some(n) if n == u64::from(VERSION) => Ok(()),
        Some(n) => Err(format!("protocol version {n} is not supported; {fix}")),
        None => Err(format!(
            "protocol version {v} is {}, not a whole number; {fix}",
            kind_of(&v)
        )),
    }
}

/// What a JSON value is, for messages.
fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.as_i64().is_some_and(|n| n < 0) => "negative",
        serde_json::Value::Number(n) if n.is_f64() => "a number with a fraction or exponent",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_round_trips_and_is_checked() {
        let env = Envelope {
            v: VERSION,
            request: Request::Add(AddRequest {
                engid: "ids-1".into(),
                sniff_if: "eth1".into(),
                reset_if: "eth0".into(),
                host: "10.0.0.5".into(),
                port: Some("443".into()),
                seconds: "180".into(),
            }),
        };
        let line = serde_json::to_string(&env).unwrap();
        assert!(line.starts_with(r#"{"v":1,"op":"add","#), "{line}");
        let Request::Add(add) = parse_request(&line).unwrap() else {
            panic!("not an add")
        };
        let spec = add.to_spec().unwrap();
        assert_eq!(spec.key.port, Some(443));
        assert_eq!(spec.duration.as_secs(), 180);
    }

    #[test]
    fn daemon_rejects_what_the_client_would() {
        let add = AddRequest {
            engid: "x;rm -rf /".into(),
            sniff_if: "eth1".into(),
            reset_if: "eth0".into(),
            host: "10.0.0.5".into(),
            port: None,
            seconds: "180".into(),
        };
        assert!(matches!(add.to_spec(), Err(Invalid::Engid(_))));
        let add = AddRequest {
            seconds: "0".into(),
            engid: "e".into(),
            ..add
        };
        assert!(matches!(add.to_spec(), Err(Invalid::Seconds(_))));
    }

    #[test]
    fn bad_lines_get_errors_not_panics() {
        for line in [
            "",
            "nonsense",
            "{}",
            r#"{"v":2,"op":"list"}"#,
            r#"{"v":1,"op":"explode"}"#,
            r#"{"v":1,"op":"add","engid":"e"}"#,
            r#"{"v":"1","op":"list"}"#,
        ] {
            let message = parse_request(line).unwrap_err();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{line}: {message}"
            );
        }
        assert_eq!(parse_request(r#"{"v":1,"op":"list"}"#), Ok(Request::List));
    }

    #[test]
    fn unknown_fields_are_refused_by_name_in_every_request() {
        for (line, field) in [
            (
                r#"{"v":1,"op":"add","engid":"e","sniff_if":"eth1","reset_if":"eth0","host":"10.0.0.1","prt":"443","seconds":"60"}"#,
                "prt",
            ),
            (
                r#"{"v":1,"op":"cancel","engid":"e","host":"10.0.0.1","prot":"1"}"#,
                "prot",
            ),
            (
                r#"{"v":1,"op":"show","engid":"e","hots":"10.0.0.1"}"#,
                "hots",
            ),
            (r#"{"v":1,"op":"list","json":true}"#, "json"),
            (r#"{"v":1,"op":"flush","all":true}"#, "all"),
            (r#"{"v":1,"op":"stats","x":1}"#, "x"),
        ] {
            let message = parse_request(line).unwrap_err();
            assert!(
                message.contains(&format!("unknown field `{field}`")),
                "{line}: {message}"
            );
        }
    }

    #[test]
    fn a_bad_version_says_what_is_wrong_with_it() {
        for (line, says) in [
            (r#"{"op":"list"}"#, "\"v\" is missing"),
            (r#"{"v":-1,"op":"list"}"#, "-1 is negative"),
            (
                r#"{"v":1.0,"op":"list"}"#,
                "1.0 is a number with a fraction",
            ),
            (r#"{"v":"1","op":"list"}"#, "\"1\" is a string"),
            (r#"{"v":null,"op":"list"}"#, "null is null"),
            (r#"{"v":2,"op":"list"}"#, "version 2 is not supported"),
            (r#"[1]"#, "an array, not a JSON object"),
        ] {
            let message = parse_request(line).unwrap_err();
            assert!(message.contains(says), "{line}: {message}");
        }
    }
}
