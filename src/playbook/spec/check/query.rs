//! Checking `query`: groups (`all`, `any`, `not`) and field tests with exactly one operator each.

use serde_json::Value as Json;
use serde_saphyr::Spanned;

use super::Checker;
use crate::net::Cidr;
use crate::playbook::record::value::Literal;
use crate::playbook::search::query::{CmpOp, Query, Test};
use crate::playbook::spec::model::RawQuery;
use crate::playbook::spec::WatchlistSpec;

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
                .map(|t| t.as_str().and_then(|t| t.parse().ok()))
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
            field: self.field(name, line),
            test,
        })
    }
}
