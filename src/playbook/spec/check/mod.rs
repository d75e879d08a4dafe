//! Every check of a playbook file: YAML into the [`model`](super::model), then each part into
//! its checked form, collecting every problem with its line. One file per part: the schedule,
//! the query, the calculations, the conditions and the actions.

use chrono::TimeDelta;

use super::model::RawPlaybook;
use super::{Playbook, Problem, Source, WatchlistSpec};
use crate::playbook::record::format::Format;

mod action;
mod calc;
mod condition;
mod format_fields;
mod names;
mod query;
mod schedule;
mod source;
mod yaml_error;

/// Parses and checks playbook YAML.
pub fn parse_playbook(text: &str) -> Result<Playbook, Vec<Problem>> {
    let raw: RawPlaybook =
        serde_saphyr::from_str(text).map_err(|e| vec![yaml_error::problem(&e, text)])?;
    let mut v = Checker {
        problems: Vec::new(),
        fields: vec!["timestamp".to_string()],
        field_lines: vec![0],
        calc_names: Vec::new(),
        format: None,
        warnings: Vec::new(),
    };
    let mut playbook = v.playbook(raw);
    if v.problems.is_empty() {
        v.warnings.sort_by_key(|p| p.line);
        playbook.warnings = v.warnings;
        Ok(playbook)
    } else {
        v.problems.sort_by_key(|p| p.line);
        Err(v.problems)
    }
}

struct Checker {
    problems: Vec<Problem>,
    fields: Vec<String>,
    /// The line where each of `fields` is first named.
    field_lines: Vec<u64>,
    calc_names: Vec<String>,
    /// The source's declared format.
    format: Option<Format>,
    /// What is likely wrong but may be right (a field the declared format does not list).
    warnings: Vec<Problem>,
}

/// The most dots in a field name (a path of at most 9 keys, such as
/// `source.geo.location.lat` with 3).
pub const MOST_DOTS_IN_FIELD: usize = 8;

/// The longest span a playbook may give (a lookback, a mute, a dedup window): a hundred years, so that
/// every time computed from a run's `now` stays in range.
pub const LONGEST_SPAN_DAYS: i64 = 36_525;

/// A user-written duration such as `90s` or `2h`, at most [`LONGEST_SPAN_DAYS`].
fn duration(text: &str) -> Result<TimeDelta, String> {
    let parsed = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like 90s, 30m, 2h or 1day")
    })?;
    TimeDelta::from_std(parsed)
        .ok()
        .filter(|d| *d <= TimeDelta::days(LONGEST_SPAN_DAYS))
        .ok_or_else(|| {
            format!("`{text}` is too long; a duration may be at most {LONGEST_SPAN_DAYS} days (100 years)")
        })
}

/// Checks a path of `source.paths`: a glob's syntax, and at most one `**` (each `**` walks the
/// whole tree below it again for every directory the one before matched).
fn glob_pattern(path: &str) -> Result<(), String> {
    if path.matches("**").count() > 1 {
        return Err("more than one `**`; use one `**` (it already matches any depth)".into());
    }
    if path.contains(['*', '?', '[']) {
        glob::Pattern::new(path).map_err(|e| format!("not a valid glob: {e}"))?;
    }
    Ok(())
}

impl Checker {
    fn err(&mut self, line: u64, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }

    fn warn(&mut self, line: u64, message: impl Into<String>) {
        self.warnings.push(Problem {
            line,
            message: message.into(),
        });
    }

    /// Warns of each query and calculation field the declared format's records do not carry.
    fn fields_against_format(&mut self) {
        let Some(format) = self.format else { return };
        let fields: Vec<(String, u64)> = self
            .fields
            .iter()
            .cloned()
            .zip(self.field_lines.iter().copied())
            .skip(1)
            .filter(|(name, _)| !name.is_empty())
            .collect();
        for (name, line) in fields {
            if let Err(e) = format_fields::check_field(format, &name) {
                self.warn(line, format!("field {e}"));
            }
        }
    }

    /// The slot of a record field, checked: each dot of a name doubles the ways it may be split
    /// into nested keys, so names have at most [`MOST_DOTS_IN_FIELD`] dots.
    fn field(&mut self, name: &str, line: u64) -> usize {
        let name = name.strip_prefix("_source.").unwrap_or(name);
        let dots = name.matches('.').count();
        if dots > MOST_DOTS_IN_FIELD {
            self.err(
                line,
                format!("field `{name}` has {dots} dots; a field name may have at most {MOST_DOTS_IN_FIELD}"),
            );
            // The playbook is refused; a placeholder slot lets the other checks go on.
            return self.field("", line);
        }
        match self.fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                self.fields.push(name.to_string());
                self.field_lines.push(line);
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
            opensearch: raw.source.value.opensearch.as_ref().and_then(|o| {
                source::opensearch(o, raw.source.value.format)
                    .map_err(|e| self.err(source_line, format!("`source.opensearch`: {e}")))
                    .ok()
            }),
        };
        if raw.source.value.opensearch.is_some() {
            if schedule.is_realtime() {
                self.err(source_line, "a real-time playbook follows log files as they grow; a cluster cannot be followed: give `source.paths`, or search the cluster on a schedule (`interval_minutes: 1`)");
            }
            if !source.paths.is_empty() {
                self.err(source_line, "`source` has both `paths` and `opensearch`; a playbook searches files or a cluster, so keep one");
            }
        } else if source.paths.is_empty() {
            self.err(
                source_line,
                "`source.paths` is empty; list the log files or globs to read",
            );
        }
        for path in &source.paths {
            if let Err(e) = glob_pattern(path) {
                self.err(source_line, format!("`source.paths`: `{path}`: {e}"));
            }
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
        self.format = source.format;
        let query = raw.query.as_ref().and_then(|q| self.query(q, &watchlists));
        let calcs = raw
            .calculations
            .iter()
            .filter_map(|c| self.calc(c))
            .collect::<Vec<_>>();
        self.fields_against_format();
        let conditions = raw
            .conditions
            .iter()
            .filter_map(|c| self.condition(c, &calcs, &watchlists))
            .collect::<Vec<_>>();
        for (i, raw_c) in raw.conditions.iter().enumerate() {
            if raw.conditions[..i]
                .iter()
                .any(|o| o.value.name == raw_c.value.name)
            {
                self.err(
                    raw_c.referenced.line(),
                    format!(
                        "condition `{}` is defined twice; names must be unique",
                        raw_c.value.name
                    ),
                );
            }
        }
        let actions = raw
            .actions
            .iter()
            .filter_map(|a| self.action(a, &calcs, &conditions))
            .collect();
        if !schedule.is_realtime() {
            for a in raw.actions.iter().filter(|a| a.value.suppress.is_some()) {
                self.err(a.referenced.line(), format!("action `{}`: `suppress` applies to real-time playbooks only (`schedule: {{realtime: {{lookback: 10m}}}}`); a scheduled one acts once per run", a.value.name));
            }
        }
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
            warnings: Vec::new(),
        }
    }
}
