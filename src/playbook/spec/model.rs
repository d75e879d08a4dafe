//! The playbook file as written in YAML: serde types that reject unknown keys and keep line numbers.
//!
//! [`super::check`] turns a [`RawPlaybook`] into a checked [`super::Playbook`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use crate::playbook::record::format::Format;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlaybook {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    pub schedule: Spanned<RawSchedule>,
    pub source: Spanned<RawSource>,
    #[serde(default)]
    pub watchlists: Vec<Spanned<RawWatchlist>>,
    #[serde(default)]
    pub query: Option<Spanned<RawQuery>>,
    #[serde(default)]
    pub calculations: Vec<Spanned<RawCalc>>,
    #[serde(default)]
    pub conditions: Vec<Spanned<RawCondition>>,
    #[serde(default)]
    pub actions: Vec<Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub interval_minutes: Option<u32>,
    pub daily: Option<RawDaily>,
    pub weekly: Option<RawWeekly>,
    pub monthly: Option<RawMonthly>,
    pub realtime: Option<RawRealtime>,
    pub lookback: Option<String>,
    pub skip: Option<Spanned<RawSkip>>,
    pub mute: Option<Spanned<RawMute>>,
}

/// `realtime: {lookback: 10m}`: follow the source files, evaluate over the last `lookback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealtime {
    pub lookback: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaily {
    pub at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeekly {
    pub days: Vec<String>,
    pub at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonthly {
    pub days: Vec<u32>,
    pub at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSkip {
    pub timezone: String,
    pub windows: Vec<Spanned<RawWindow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    #[serde(default)]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMute {
    pub from: String,
    #[serde(rename = "for")]
    pub duration: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[serde(default)]
    pub paths: Vec<String>,
    pub format: Option<Format>,
    pub max_filtered: Option<usize>,
    pub opensearch: Option<RawOpenSearch>,
}

/// `source.opensearch`: the cluster to search instead of `paths`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenSearch {
    pub url: String,
    pub index: String,
    pub time_field: Option<String>,
    pub auth: Option<RawAuth>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
}

/// Exactly one of `basic`, `api_key_file`, `api_key_env`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub basic: Option<RawBasic>,
    pub api_key_file: Option<String>,
    pub api_key_env: Option<String>,
}

/// A user and exactly one of `password_file`, `password_env`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub user: String,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatchlist {
    pub name: String,
    pub file: String,
    pub key: String,
}

/// A query node: a group (`all`, `any`, `not`) or a test on one `field` with exactly one operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    pub all: Option<Vec<Spanned<RawQuery>>>,
    pub any: Option<Vec<Spanned<RawQuery>>>,
    pub not: Option<Box<Spanned<RawQuery>>>,
    pub field: Option<String>,
    pub is: Option<Json>,
    pub is_not: Option<Json>,
    #[serde(rename = "in")]
    pub in_list: Option<Vec<Json>>,
    pub within: Option<Json>,
    pub contains: Option<String>,
    pub exists: Option<bool>,
    pub greater: Option<Json>,
    pub greater_or_equal: Option<Json>,
    pub less: Option<Json>,
    pub less_or_equal: Option<Json>,
    pub between: Option<Vec<Json>>,
    pub in_watchlist: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalc {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field: Option<String>,
    pub by: Option<String>,
    pub of: Option<String>,
    pub operation: Option<String>,
    pub size: Option<usize>,
    #[serde(default)]
    pub subgroups: Vec<Spanned<RawCalc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub comparison: Option<String>,
    pub list: Option<String>,
    pub of: Option<String>,
    pub operator: String,
    pub value: Option<f64>,
    pub value_from_watchlist: Option<RawWatchlistRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatchlistRef {
    pub watchlist: String,
    pub column: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    pub name: String,
    pub trigger: String,
    pub for_each: Option<String>,
    pub mute: Option<Spanned<RawMute>>,
    /// Real-time playbooks: a result acted on is not acted on again within this span.
    pub suppress: Option<String>,
    pub run_script: Option<RawRunScript>,
    pub webhook: Option<RawWebhook>,
    pub create_alert: Option<RawCreateAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunScript {
    pub target: RawTarget,
    pub script: String,
    /// Allowed commands: the first word of a line, mapped to the program that is run for it.
    pub commands: Option<BTreeMap<String, String>>,
    pub timeout: Option<String>,
    /// The record or result field that names the sensor a line goes to (SSH targets).
    pub route_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawTarget {
    Local,
    Ssh(RawSsh),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// Exactly one of `host`, `hosts` (`name`, `name:port`, `[v6]:port`) and `inventory` (a
    /// YAML file of sensor names to addresses, read at each run).
    pub host: Option<String>,
    pub hosts: Option<Vec<String>>,
    pub inventory: Option<String>,
    /// The port of the sensors that do not name one.
    pub port: Option<u16>,
    pub user: String,
    pub identity_file: Option<String>,
    pub known_hosts_file: Option<String>,
    /// How many sensors are worked on at once.
    pub parallel: Option<usize>,
    /// How long an idle connection is kept for reuse; `0s`: one connection per line.
    pub persist: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreateAlert {
    pub file: String,
    pub alert_type: String,
    #[serde(default)]
    pub severity: u32,
    #[serde(default = "one")]
    pub fidelity: u32,
    #[serde(default)]
    pub combine: bool,
    pub dedup: Option<RawDedup>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedup {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub window: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
}

fn yes() -> bool {
    true
}
