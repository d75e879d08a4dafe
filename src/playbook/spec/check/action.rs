//! Checking `actions`: the trigger, what each renders for, and one of Run Script (target, allowed
//! commands), Webhook (URL, headers) or Create Alert (file, deduplication).

use std::time::Duration;

use serde_saphyr::Spanned;

use super::names::check_action_names;
use super::{duration, Checker};
use crate::playbook::act::action::{Action, ActionKind, Dedup, ForEach, HttpUrl};
use crate::playbook::act::command::{default_allow_list, KNOWN_COMMANDS};
use crate::playbook::act::condition::{Condition, ConditionKind};
use crate::playbook::act::fleet::{
    Sensor, Sensors, SshTarget, Target, DEFAULT_PARALLEL, DEFAULT_PERSIST,
};
use crate::playbook::act::template::Template;
use crate::playbook::search::calc::Calc;
use crate::playbook::spec::model::{RawAction, RawSsh, RawTarget};

impl Checker {
    pub(super) fn action(
        &mut self,
        raw: &Spanned<RawAction>,
        calcs: &[Calc],
        conditions: &[Condition],
    ) -> Option<Action> {
        let line = raw.referenced.line();
        let a = &raw.value;
        let trigger = conditions.iter().find(|c| c.name == a.trigger);
        if trigger.is_none() {
            self.err(
                line,
                format!(
                    "action `{}`: `trigger: {}` must name a condition",
                    a.name, a.trigger
                ),
            );
        }
        let kinds = [
            a.run_script.is_some(),
            a.webhook.is_some(),
            a.create_alert.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.err(
                line,
                format!(
                    "action `{}` needs exactly one of run_script, webhook or create_alert",
                    a.name
                ),
            );
            return None;
        }
        let for_each = match a.for_each.as_deref() {
            None if a.run_script.is_some() => ForEach::Run,
            None | Some("filtered") => ForEach::Filtered,
            Some("run") => ForEach::Run,
            Some("matches") => {
                if !matches!(trigger.map(|t| &t.kind), Some(ConditionKind::List(_))) {
                    self.err(
                        line,
                        format!(
                            "action `{}`: `for_each: matches` needs a compare_list trigger",
                            a.name
                        ),
                    );
                }
                ForEach::Matches
            }
            Some(name) => match Calc::find(calcs, name) {
                Some((chain, calc)) => ForEach::Calc {
                    chain: chain.into_iter().map(str::to_string).collect(),
                    metric: matches!(calc, Calc::Metric(_)),
                },
                None => {
                    self.err(line, format!("action `{}`: `for_each: {name}` must be run, filtered, matches or a calculation name", a.name));
                    ForEach::Run
                }
            },
        };
        let mute = a.mute.as_ref().and_then(|m| self.mute(m));
        let suppress = a.suppress.as_deref().and_then(|t| match duration(t) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(line, format!("action `{}`: `suppress`: {e}", a.name));
                None
            }
        });
        let timeout = |t: &Option<String>, this: &mut Checker| match t
            .as_deref()
            .map(|t| duration(t).map(|d| d.to_std().unwrap_or_default()))
            .unwrap_or(Ok(Duration::from_secs(30)))
        {
            Ok(d) => d,
            Err(e) => {
                this.err(line, format!("action `{}`: `timeout`: {e}", a.name));
                Duration::from_secs(30)
            }
        };
        let template = |text: &str, this: &mut Checker| match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                this.err(line, format!("action `{}`: {e}", a.name));
                None
            }
        };
        let kind = if let Some(r) = &a.run_script {
            let target = match &r.target {
                RawTarget::Local => Target::Local,
                RawTarget::Ssh(s) => match ssh_target(s) {
                    Ok(t) => Target::Ssh(t),
                    Err(e) => {
                        self.err(line, format!("action `{}`: {e}", a.name));
                        Target::Local
                    }
                },
            };
            if let Some(field) = &r.route_by {
                if !matches!(target, Target::Ssh(_)) {
                    self.err(line, format!("action `{}`: `route_by: {field}` picks one sensor per line; it needs an ssh target", a.name));
                }
                if field.trim().is_empty() || field.contains(['{', '}']) {
                    self.err(line, format!("action `{}`: `route_by` names a field (for example `host`), not a template", a.name));
                }
            }
            let commands = r.commands.clone().unwrap_or_else(default_allow_list);
            for (command, program) in &commands {
                if !KNOWN_COMMANDS.contains(&command.as_str()) || program.trim().is_empty() {
                    self.err(line, format!("action `{}`: `commands` may only map {KNOWN_COMMANDS:?} to a program path; `{command}` has no argument schema", a.name));
                }
            }
            let timeout = timeout(&r.timeout, self);
            ActionKind::RunScript {
                target,
                script: template(&r.script, self)?,
                commands,
                timeout,
                route_by: r.route_by.clone(),
            }
        } else if let Some(w) = &a.webhook {
            let url = match HttpUrl::parse(&w.url) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.err(line, format!("action `{}`: url `{}`: {e}", a.name, w.url));
                    None
                }
            };
            let bad_header = w.headers.iter().any(|(k, v)| {
                k.is_empty()
                    || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    || v.contains(['\r', '\n'])
            });
            if bad_header {
                self.err(line, format!("action `{}`: header names must be letters, digits and `-`, values a single line", a.name));
            }
            let timeout = timeout(&w.timeout, self);
            ActionKind::Webhook {
                url: url?,
                body: template(&w.body, self)?,
                headers: w.headers.clone(),
                timeout,
            }
        } else {
            let c = a.create_alert.as_ref().expect("one kind is set");
            let dedup = c.dedup.as_ref().filter(|d| d.enabled).map(|d| Dedup {
                window: d.window.as_deref().and_then(|w| match duration(w) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        self.err(line, format!("action `{}`: dedup window: {e}", a.name));
                        None
                    }
                }),
                fields: d.fields.clone(),
            });
            if c.file.trim().is_empty() {
                self.err(
                    line,
                    format!(
                        "action `{}`: `file` is empty; name the NDJSON file alerts are appended to",
                        a.name
                    ),
                );
            }
            ActionKind::CreateAlert {
                file: c.file.clone(),
                alert_type: c.alert_type.clone(),
                severity: c.severity,
                fidelity: c.fidelity,
                combine: c.combine,
                dedup,
            }
        };
        let action = Action {
            name: a.name.clone(),
            trigger: a.trigger.clone(),
            for_each,
            mute,
            suppress,
            kind,
        };
        for name in check_action_names(&action, calcs, conditions, self.format) {
            if name.never {
                self.err(line, name.message);
            } else {
                self.warn(line, name.message);
            }
        }
        Some(action)
    }
}

/// The checked `ssh:` target: one host, a list or an inventory, and the connection's settings.
fn ssh_target(s: &RawSsh) -> Result<SshTarget, String> {
    let port = s.port.unwrap_or(22);
    let sensors = match (&s.host, &s.hosts, &s.inventory) {
        (Some(host), None, None) => Sensors::Listed(vec![Sensor::parse(host, host, port)?]),
        (None, Some(hosts), None) if !hosts.is_empty() => {
            let sensors = hosts
                .iter()
                .map(|h| Sensor::parse(h, h, port))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(twice) = sensors
                .iter()
                .enumerate()
                .find(|(i, s)| sensors[..*i].iter().any(|t| t.address() == s.address()))
            {
                return Err(format!("ssh `hosts` lists {} twice", twice.1.address()));
            }
            Sensors::Listed(sensors)
        }
        (None, None, Some(file)) if !file.trim().is_empty() => Sensors::Inventory {
            file: file.clone(),
            port,
        },
        _ => return Err("an ssh target needs exactly one of `host`, `hosts` (a non-empty list) or `inventory` (a file)".into()),
    };
    let persist = match s.persist.as_deref() {
        None => DEFAULT_PERSIST,
        Some(text) => duration(text)?.to_std().unwrap_or_default(),
    };
    let target = SshTarget {
        sensors,
        user: s.user.clone(),
        identity_file: s.identity_file.clone(),
        known_hosts_file: s.known_hosts_file.clone(),
        parallel: s.parallel.unwrap_or(DEFAULT_PARALLEL),
        persist,
    };
    target.check()?;
    Ok(target)
}
