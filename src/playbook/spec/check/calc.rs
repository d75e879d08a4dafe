//! Checking `calculations`: Top/Bottom groups (ranked by count or by a metric, nested in
//! subgroups) and Metric values, each with a name unique in the playbook.

use serde_saphyr::Spanned;

use super::Checker;
use crate::playbook::search::calc::{Calc, Metric, MetricOp, Terms};
use crate::playbook::spec::model::RawCalc;

impl Checker {
    pub(super) fn calc(&mut self, raw: &Spanned<RawCalc>) -> Option<Calc> {
        let line = raw.referenced.line();
        let c = &raw.value;
        if self.calc_names.contains(&c.name) {
            self.err(
                line,
                format!(
                    "calculation `{}` is defined twice; names must be unique (subgroups included)",
                    c.name
                ),
            );
        }
        self.calc_names.push(c.name.clone());
        if c.name.is_empty() || c.name.contains('.') {
            self.err(line, "a calculation name must be non-empty and contain no `.` (templates use it in dotted names)");
        }
        let Some(field_name) = c.field.as_deref() else {
            self.err(line, format!("calculation `{}` needs `field:`", c.name));
            return None;
        };
        let field = self.field(field_name, line);
        // A bucket binds the field's name: `srcip.keyword` binds `srcip`.
        let field_name = field_name.strip_prefix("_source.").unwrap_or(field_name);
        let field_name = field_name
            .strip_suffix(".keyword")
            .unwrap_or(field_name)
            .to_string();
        match c.kind.as_str() {
            "top" | "bottom" => {
                if c.operation.is_some() {
                    self.err(line, format!("calculation `{}`: `operation` is for metrics; a top/bottom uses `by` (and `of`)", c.name));
                }
                let rank_by = match (c.by.as_deref().unwrap_or("count"), c.of.as_deref()) {
                    ("count", None) => None,
                    ("count", Some(_)) => {
                        self.err(
                            line,
                            format!(
                                "calculation `{}`: `of` is only for `by` other than count",
                                c.name
                            ),
                        );
                        None
                    }
                    (by, of) => match (MetricOp::parse(by), of) {
                        (Some(op), Some(of)) => Some(Metric {
                            name: "metric".into(),
                            op,
                            field: self.field(of, line),
                            field_name: of.to_string(),
                        }),
                        (None, _) => {
                            self.err(line, format!("calculation `{}`: `by: {by}` must be count, average, maximum, minimum, sum or unique_count", c.name));
                            None
                        }
                        (Some(_), None) => {
                            self.err(line, format!("calculation `{}`: `by: {by}` needs `of:` the field to compute it on", c.name));
                            None
                        }
                    },
                };
                let size = c.size.unwrap_or(10);
                if size == 0 {
                    self.err(
                        line,
                        format!("calculation `{}`: `size` must be at least 1", c.name),
                    );
                }
                let subgroups = c.subgroups.iter().filter_map(|s| self.calc(s)).collect();
                Some(Calc::Terms(Terms {
                    name: c.name.clone(),
                    field,
                    field_name,
                    bottom: c.kind == "bottom",
                    rank_by,
                    size,
                    subgroups,
                }))
            }
            "metric" => {
                if c.by.is_some() || c.of.is_some() || c.size.is_some() || !c.subgroups.is_empty() {
                    self.err(
                        line,
                        format!(
                            "calculation `{}`: a metric takes only `operation` and `field`",
                            c.name
                        ),
                    );
                }
                let op = c.operation.as_deref().and_then(MetricOp::parse);
                if op.is_none() {
                    self.err(line, format!("calculation `{}`: a metric needs `operation:` average, maximum, minimum, sum or unique_count", c.name));
                }
                Some(Calc::Metric(Metric {
                    name: c.name.clone(),
                    op: op?,
                    field,
                    field_name,
                }))
            }
            other => {
                self.err(
                    line,
                    format!(
                        "calculation `{}`: `type: {other}` must be top, bottom or metric",
                        c.name
                    ),
                );
                None
            }
        }
    }
}
