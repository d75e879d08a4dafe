//! Actions and what they would do, decided without side effects: the checked command lines of a
//! Run Script, the distinct bodies of a Webhook, the alert records of a Create Alert, and how a
//! dry run describes them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use super::command::{check_script, AllowList, CheckedLine, Refusal};
use super::condition::{rows, Outcome, Row};
use super::fleet::{Sensors, Target};
use super::template::{lookup, Escape, Template};
use crate::playbook::record::format::record_bindings;
use crate::playbook::schedule::Mute;

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: String,
    /// The name of the condition that triggers it.
    pub trigger: String,
    pub for_each: ForEach,
    pub mute: Option<Mute>,
    /// Real-time playbooks: a result (a line, a body, an alert) acted on is not acted on again
    /// within this span; `None`: the lookback.
    pub suppress: Option<TimeDelta>,
    pub kind: ActionKind,
}

/// What an action renders once per: the whole run, each filtered record, each result of a
/// calculation, or each result that met the trigger condition.
#[derive(Debug, Clone, PartialEq)]
pub enum ForEach {
    Run,
    Filtered,
    Calc { chain: Vec<String>, metric: bool },
    Matches,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    RunScript {
        target: Target,
        script: Template,
        commands: AllowList,
        /// Per line (a whole run's lines locally), per sensor over SSH.
        timeout: Duration,
        /// The record or result field that names the one sensor a line goes to.
        route_by: Option<String>,
    },
    Webhook {
        url: HttpUrl,
        body: Template,
        headers: BTreeMap<String, String>,
        timeout: Duration,
    },
    CreateAlert {
        file: String,
        alert_type: String,
        severity: u32,
        fidelity: u32,
        combine: bool,
        dedup: Option<Dedup>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dedup {
    /// `None`: the run's lookback window.
    pub window: Option<TimeDelta>,
    /// Hash only these fields (dotted paths); empty: every field but the ignored ones.
    pub fields: Vec<String>,
}

/// An `http://host[:port]/path` or `https://host[:port]/path` address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpUrl {
    /// `https://`: TLS with certificate checks (the Mozilla roots).
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let (https, rest) = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err("the URL must start with http:// or https://".into()),
        };
        let (authority, path) = rest
            .find('/')
            .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let bracketed = authority.starts_with('[') && authority.ends_with(']');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !bracketed && (!h.contains(':') || h.ends_with(']')) => {
                (h, p.parse().map_err(|_| format!("bad port `{p}`"))?)
            }
            _ => (authority, if https { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(format!("bad host `{host}`"));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the path must not contain spaces or control characters".into());
        }
        Ok(HttpUrl {
            https,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// What one action will do in this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Plan {
    RunScript {
        target: Target,
        lines: Vec<CheckedLine>,
        refused: Vec<Refusal>,
    },
    Webhook {
        url: HttpUrl,
        bodies: Vec<String>,
        refused: Vec<Refusal>,
    },
    CreateAlert {
        file: String,
        alerts: Vec<Json>,
    },
}

impl Plan {
    /// How many lines or bodies were refused before anything ran.
    pub fn refusals(&self) -> usize {
        match self {
            Plan::RunScript { refused, .. } | Plan::Webhook { refused, .. } => refused.len(),
            Plan::CreateAlert { .. } => 0,
        }
    }

    /// How many commands, requests or alert writes the plan would carry out.
    pub fn steps(&self) -> usize {
        match self {
            Plan::RunScript { lines, .. } => lines.len(),
            Plan::Webhook { bodies, .. } => bodies.len(),
            Plan::CreateAlert { alerts, .. } => usize::from(!alerts.is_empty()),
        }
    }

    /// What a dry run prints for the plan; `dir` is where alert files are relative to.
    pub fn describe(&self, dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Plan::RunScript {
                target,
                lines,
                refused,
            } => {
                for line in lines {
                    let words = format!("{} {}", line.program, line.args.join(" "));
                    out.push(match (target, &line.sensor) {
                        (Target::Local, _) => format!("would run locally: {words}"),
                        (Target::Ssh(_), Some(sensor)) => {
                            format!("would run over ssh on sensor {sensor}: {words}")
                        }
                        (Target::Ssh(ssh), None) => format!(
                            "would run over ssh on {}: {words}",
                            match &ssh.sensors {
                                Sensors::Listed(s) => s
                                    .iter()
                                    .map(|s| s.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                Sensors::Inventory { file, .. } => {
                                    format!("every sensor of {file}")
                                }
                            }
                        ),
                    });
                }
                out.extend(refused.iter().map(Refusal::report));
            }
            Plan::Webhook {
                url,
                bodies,
                refused,
            } => {
                out.extend(bodies.iter().map(|b| format!("would POST to {url}: {b}")));
                out.extend(refused.iter().map(Refusal::report));
            }
            Plan::CreateAlert { file, alerts } => {
                out.extend(
                    alerts
                        .iter()
                        .map(|a| format!("would append to {}: {a}", dir.join(file).display())),
                );
            }
        }
        out
    }
}

/// The data an action renders from.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// `{"ctx": {...}}`: payload, execution time and scheduled time.
    pub root: &'a Json,
    pub playbook: &'a str,
    pub now: DateTime<Utc>,
}

impl Action {
    /// Plans the action for a run whose trigger condition came out as `outcome`.
    pub fn plan(&self, run: RunContext<'_>, outcome: &Outcome) -> Plan {
        let contexts = self.contexts(run.root, outcome);
        match &self.kind {
            ActionKind::RunScript {
                target,
                script,
                commands,
                route_by,
                ..
            } => {
                let (mut lines, mut refused) = (Vec::new(), Vec::new());
                for frames in &contexts {
                    let full: Vec<&Json> = std::iter::once(run.root)
                        .chain(frames.iter().map(|f| &**f))
                        .collect();
                    let sensor = route_by.as_deref().map(|field| route(field, &full));
                    for checked in check_script(&script.render(&full), commands) {
                        match (checked, &sensor) {
                            (Err(refusal), _) => refused.push(refusal),
                            (Ok(line), None) => lines.push(line),
                            (Ok(line), Some(Ok(name))) => lines.push(CheckedLine {
                                sensor: Some(name.clone()),
                                ..line
                            }),
                            (Ok(line), Some(Err(reason))) => refused.push(Refusal {
                                line: line.line,
                                reason: reason.clone(),
                            }),
                        }
                    }
                }
                Plan::RunScript {
                    target: target.clone(),
                    lines,
                    refused,
                }
            }
            ActionKind::Webhook { url, body, .. } => {
                let (mut bodies, mut refused) = (Vec::<String>::new(), Vec::new());
                for frames in &contexts {
                    let full: Vec<&Json> = std::iter::once(run.root)
                        .chain(frames.iter().map(|f| &**f))
                        .collect();
                    let text = body.render_string(&full, Escape::Json);
                    match serde_json::from_str::<Json>(&text) {
                        Ok(_) if bodies.contains(&text) => {}
                        Ok(_) => bodies.push(text),
                        Err(e) => refused.push(Refusal {
                            line: text,
                            reason: format!(
                                "the rendered body is not JSON ({e}); fix the body template"
                            ),
                        }),
                    }
                }
                Plan::Webhook {
                    url: url.clone(),
                    bodies,
                    refused,
                }
            }
            ActionKind::CreateAlert {
                file,
                alert_type,
                severity,
                fidelity,
                combine,
                ..
            } => {
                let base = json!({
                    "timestamp": run.now.timestamp_millis(),
                    "timestamp_utc": run.now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    "event_name": alert_type,
                    "alert_type": alert_type,
                    "severity": severity,
                    "fidelity": fidelity,
                    "ath_info": { "playbook": run.playbook, "action": self.name, "condition": self.trigger },
                });
                let results: Vec<Json> = contexts.iter().map(flatten).collect();
                let alerts = if *combine && !results.is_empty() {
                    let mut alert = base;
                    alert["result_count"] = json!(results.len());
                    alert["results"] = Json::Array(results);
                    vec![alert]
                } else {
                    results
                        .into_iter()
                        .map(|r| {
                            let mut alert = base.clone();
                            alert["result"] = r;
                            alert
                        })
                        .collect()
                };
                Plan::CreateAlert {
                    file: file.clone(),
                    alerts,
                }
            }
        }
    }

    fn contexts(&self, root: &Json, outcome: &Outcome) -> Vec<Row> {
        let payload = &root["ctx"]["payload"];
        match &self.for_each {
            ForEach::Run => vec![Vec::new()],
            // Each record's frame: its fields by native and canonical name, and `_source`.
            ForEach::Filtered => payload["filtered"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|hit| vec![Arc::new(record_bindings(&hit["_source"]))])
                .collect(),
            ForEach::Calc { chain, metric } => rows(&payload["aggregations"], chain, *metric)
                .into_iter()
                .map(|(row, _)| row)
                .collect(),
            ForEach::Matches => outcome.matches.clone(),
        }
    }
}

/// The sensor a result names in `field` (`route_by`): a string or a number, never absent.
fn route(field: &str, frames: &[&Json]) -> Result<String, String> {
    match lookup(field, frames) {
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Json::Number(n)) => Ok(n.to_string()),
        other => Err(format!(
            "`route_by: {field}` has no sensor name here (found {}); the line goes to no sensor",
            other.map_or("nothing".to_string(), Json::to_string)
        )),
    }
}

/// One result as a flat record: the field bindings of each bucket (outer first; `doc_count` of
/// the innermost), or a record's `_source`, plus any watchlist row.
fn flatten(frames: &Row) -> Json {
    let mut out = Map::new();
    for frame in frames {
        let Json::Object(map) = &**frame else {
            continue;
        };
        if let Some(Json::Object(source)) = map.get("_source") {
            out.extend(source.clone());
            continue;
        }
        for (k, v) in map {
            let nested_agg = v.get("buckets").is_some();
            if k != "key" && !nested_agg {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests;
