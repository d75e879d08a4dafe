//! Every check of a playbook file: YAML into the [`model`](super::model), then each part into
//! its checked form, collecting every problem with its line. One file per part: the schedule,
//! the query, the calculations, the conditions and the actions.

use std::time::Duration;

use super::model::RawPlaybook;
use super::{Playbook, Problem, Source, WatchlistSpec};

mod action;
mod calc;
mod condition;
mod query;
mod schedule;

/// Parses and checks playbook YAML.
pub fn parse_playbook(text: &str) -> Result<Playbook, Vec<Problem>> {
    let raw: RawPlaybook = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let message = e
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .to_string();
        vec![Problem { line, message }]
    })?;
    let mut v = Checker {
        problems: Vec::new(),
        fields: vec!["timestamp".to_string()],
        calc_names: Vec::new(),
    };
    let playbook = v.playbook(raw);
    if v.problems.is_empty() {
        Ok(playbook)
    } else {
        v.problems.sort_by_key(|p| p.line);
        Err(v.problems)
    }
}

struct Checker {
    problems: Vec<Problem>,
    fields: Vec<String>,
    calc_names: Vec<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like 90s, 30m, 2h or 1day")
    })
}

impl Checker {
    fn err(&mut self, line: u64, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }

    fn field(&mut self, name: &str) -> usize {
        let name = name.strip_prefix("_source.").unwrap_or(name);
        match self.fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                self.fields.push(name.to_string());
                self.fields.len() - 1
            }
        }
    }

    fn playbook(&mut self, raw: RawPlaybook) -> Playbook {
        if raw.name.value.trim().is_empty() {
            self.err(
                raw.name.referenced.line(),
                "`name` is empty; give the playbook a name",
            );
        }
        let schedule = self.schedule(&raw.schedule);
        let source_line = raw.source.referenced.line();
        let source = Source {
            paths: raw.source.value.paths.clone(),
            format: raw.source.value.format,
            max_filtered: raw.source.value.max_filtered.unwrap_or(100),
        };
        if source.paths.is_empty() {
            self.err(
                source_line,
                "`source.paths` is empty; list the log files or globs to read",
            );
        }
        let watchlists: Vec<WatchlistSpec> = raw
            .watchlists
            .iter()
            .map(|w| WatchlistSpec {
                name: w.value.name.clone(),
                file: w.value.file.clone(),
                key: w.value.key.clone(),
            })
            .collect();
        let query = raw.query.as_ref().and_then(|q| self.query(q, &watchlists));
        let calcs = raw
            .calculations
            .iter()
            .filter_map(|c| self.calc(c))
            .collect::<Vec<_>>();
        let conditions = raw
            .conditions
            .iter()
            .filter_map(|c| self.condition(c, &calcs, &watchlists))
            .collect::<Vec<_>>();
        for (i, c) in conditions.iter().enumerate() {
            if conditions[..i].iter().any(|o| o.name == c.name) {
                self.err(
                    raw.conditions[i].referenced.line(),
                    format!(
                        "condition `{}` is defined twice; names must be unique",
                        c.name
                    ),
                );
            }
        }
        let actions = raw
            .actions
            .iter()
            .filter_map(|a| self.action(a, &calcs, &conditions))
            .collect();
        Playbook {
            name: raw.name.value,
            description: raw.description,
            enabled: raw.enabled.unwrap_or(true),
            schedule,
            source,
            watchlists,
            fields: std::mem::take(&mut self.fields),
            query,
            calcs,
            conditions,
            actions,
        }
    }
}
