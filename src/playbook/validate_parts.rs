//! Checking the query, calculations and conditions of a playbook.

use super::*;

const OPERATORS: &str = "is, is_not, in, within, contains, exists, greater, greater_or_equal, less, less_or_equal, between, in_watchlist";

fn number(value: &Json) -> Option<f64> {
    Literal::from_json(value).and_then(|l| l.as_f64())
}

impl Checker {
    pub(super) fn query(
        &mut self,
        raw: &Spanned<RawQuery>,
        watchlists: &[WatchlistSpec],
    ) -> Option<Query> {
        let line = raw.referenced.line();
        let q = &raw.value;
        let groups = [
            q.all.is_some(),
            q.any.is_some(),
            q.not.is_some(),
            q.field.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if groups != 1 {
            self.err(line, "a query node needs exactly one of `all`, `any`, `not` or `field` (with one operator)");
            return None;
        }
        if let Some(list) = q.all.as_ref().or(q.any.as_ref()) {
            let children: Vec<Query> = list
                .iter()
                .filter_map(|c| self.query(c, watchlists))
                .collect();
            if list.is_empty() {
                self.err(
                    line,
                    "an `all`/`any` group is empty; add conditions or remove it",
                );
            }
            return Some(if q.all.is_some() {
                Query::All(children)
            } else {
                Query::Any(children)
            });
        }
        if let Some(inner) = &q.not {
            return self
                .query(inner, watchlists)
                .map(|c| Query::Not(Box::new(c)));
        }
        let name = q.field.as_deref().expect("counted above");
        let ops = [
            q.is.is_some(),
            q.is_not.is_some(),
            q.in_list.is_some(),
            q.within.is_some(),
            q.contains.is_some(),
            q.exists.is_some(),
            q.greater.is_some(),
            q.greater_or_equal.is_some(),
            q.less.is_some(),
            q.less_or_equal.is_some(),
            q.between.is_some(),
            q.in_watchlist.is_some(),
        ];
        if ops.iter().filter(|b| **b).count() != 1 {
            self.err(
                line,
                format!("field `{name}` needs exactly one operator: {OPERATORS}"),
            );
            return None;
        }
        let scalar = |v: &Json, this: &mut Checker| {
            let lit = Literal::from_json(v);
            if lit.is_none() {
                this.err(line, format!("field `{name}`: expected a single value (text, number or true/false), found {v}"));
            }
            lit
        };
        let num = |v: &Json, op: &str, this: &mut Checker| {
            let n = number(v);
            if n.is_none() {
                this.err(
                    line,
                    format!("field `{name}`: `{op}` needs a number, found {v}"),
                );
            }
            n
        };
        let test = if let Some(v) = &q.is {
            Test::Is(scalar(v, self)?)
        } else if let Some(v) = &q.is_not {
            Test::IsNot(scalar(v, self)?)
        } else if let Some(list) = &q.in_list {
            if list.is_empty() {
                self.err(
                    line,
                    format!("field `{name}`: `in` needs at least one value"),
                );
            }
            Test::In(
                list.iter()
                    .map(|v| scalar(v, self))
                    .collect::<Option<Vec<_>>>()?,
            )
        } else if let Some(v) = &q.within {
            let texts: Vec<&Json> = match v {
                Json::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let nets: Vec<Option<Cidr>> = texts
                .iter()
                .map(|t| t.as_str().and_then(Cidr::parse))
                .collect();
            if texts.is_empty() || nets.iter().any(Option::is_none) {
                self.err(line, format!("field `{name}`: `within` needs networks such as 10.0.0.0/8 or [10.0.0.0/8, fc00::/7], found {v}"));
                return None;
            }
            Test::Within(nets.into_iter().flatten().collect())
        } else if let Some(s) = &q.contains {
            Test::Contains(s.clone())
        } else if let Some(b) = q.exists {
            Test::Exists(b)
        } else if let Some(v) = &q.greater {
            Test::Compare(CmpOp::Greater, num(v, "greater", self)?)
        } else if let Some(v) = &q.greater_or_equal {
            Test::Compare(CmpOp::GreaterOrEqual, num(v, "greater_or_equal", self)?)
        } else if let Some(v) = &q.less {
            Test::Compare(CmpOp::Less, num(v, "less", self)?)
        } else if let Some(v) = &q.less_or_equal {
            Test::Compare(CmpOp::LessOrEqual, num(v, "less_or_equal", self)?)
        } else if let Some(pair) = &q.between {
            match pair
                .iter()
                .map(number)
                .collect::<Option<Vec<f64>>>()
                .as_deref()
            {
                Some(&[low, high]) if low <= high => Test::Between(low, high),
                _ => {
                    self.err(line, format!("field `{name}`: `between` needs two numbers [low, high] with low <= high"));
                    return None;
                }
            }
        } else {
            let list = q.in_watchlist.as_deref().expect("one operator is set");
            match watchlists.iter().position(|w| w.name == list) {
                Some(i) => Test::InWatchlist(i),
                None => {
                    self.err(line, format!("field `{name}`: no watchlist named `{list}`; declare it under `watchlists:`"));
                    return None;
                }
            }
        };
        Some(Query::Test {
            field: self.field(name),
            test,
        })
    }

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
        let field = self.field(field_name);
        let field_name = field_name
            .strip_prefix("_source.")
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
                            field: self.field(of),
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
                let chain = chain.into_iter().map(str::to_string).collect();
                ConditionKind::List {
                    all,
                    counts,
                    chain,
                    metric,
                    op,
                    threshold,
                }
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
