//! Checking `conditions`: Compare Value on the total hits, Compare List over a calculation's
//! results against a value or a watchlist column.

use serde_saphyr::Spanned;

use super::Checker;
use crate::playbook::act::condition::{CompareList, Condition, ConditionKind, Threshold};
use crate::playbook::search::calc::Calc;
use crate::playbook::search::query::CmpOp;
use crate::playbook::spec::model::RawCondition;
use crate::playbook::spec::WatchlistSpec;

impl Checker {
    pub(super) fn condition(
        &mut self,
        raw: &Spanned<RawCondition>,
        calcs: &[Calc],
        watchlists: &[WatchlistSpec],
    ) -> Option<Condition> {
        let line = raw.referenced.line();
        let c = &raw.value;
        let Some(op) = CmpOp::parse(&c.operator) else {
            self.err(
                line,
                format!(
                    "condition `{}`: `operator: {}` must be one of {}",
                    c.name,
                    c.operator,
                    CmpOp::NAMES
                ),
            );
            return None;
        };
        let kind = match c.kind.as_str() {
            "compare_value" => {
                if c.comparison.is_some()
                    || c.list.is_some()
                    || c.of.is_some()
                    || c.value_from_watchlist.is_some()
                {
                    self.err(line, format!("condition `{}`: compare_value compares the total hits; remove comparison/list/of/value_from_watchlist", c.name));
                }
                let Some(value) = c.value else {
                    self.err(line, format!("condition `{}`: needs `value:`", c.name));
                    return None;
                };
                ConditionKind::TotalHits { op, value }
            }
            "compare_list" => {
                let all = match c.comparison.as_deref().unwrap_or("at_least_one") {
                    "at_least_one" => false,
                    "all" => true,
                    other => {
                        self.err(
                            line,
                            format!(
                                "condition `{}`: `comparison: {other}` must be at_least_one or all",
                                c.name
                            ),
                        );
                        false
                    }
                };
                let counts = match c.list.as_deref() {
                    Some("result_counts") => true,
                    Some("result_list") => false,
                    _ => {
                        self.err(
                            line,
                            format!(
                                "condition `{}`: `list:` must be result_list or result_counts",
                                c.name
                            ),
                        );
                        return None;
                    }
                };
                let of = c.of.as_deref().unwrap_or("");
                let Some((chain, calc)) = Calc::find(calcs, of) else {
                    self.err(
                        line,
                        format!("condition `{}`: `of: {of}` must name a calculation", c.name),
                    );
                    return None;
                };
                let metric = matches!(calc, Calc::Metric(_));
                if metric && counts {
                    self.err(line, format!("condition `{}`: a metric has no result counts; use `list: result_list`", c.name));
                }
                let threshold = match (&c.value, &c.value_from_watchlist) {
                    (Some(v), None) => Threshold::Value(*v),
                    (None, Some(r)) => {
                        match watchlists.iter().position(|w| w.name == r.watchlist) {
                            Some(index) => Threshold::Watchlist {
                                index,
                                column: r.column.clone(),
                            },
                            None => {
                                self.err(
                                    line,
                                    format!(
                                        "condition `{}`: no watchlist named `{}`",
                                        c.name, r.watchlist
                                    ),
                                );
                                return None;
                            }
                        }
                    }
                    _ => {
                        self.err(
                            line,
                            format!(
                                "condition `{}`: needs either `value:` or `value_from_watchlist:`",
                                c.name
                            ),
                        );
                        return None;
                    }
                };
                ConditionKind::List(CompareList {
                    chain: chain.into_iter().map(str::to_string).collect(),
                    all,
                    counts,
                    metric,
                    op,
                    threshold,
                })
            }
            other => {
                self.err(
                    line,
                    format!(
                        "condition `{}`: `type: {other}` must be compare_value or compare_list",
                        c.name
                    ),
                );
                return None;
            }
        };
        Some(Condition {
            name: c.name.clone(),
            kind,
        })
    }
}
