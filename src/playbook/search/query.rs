//! The checked query: nested all/any/not groups of field tests, evaluated on one record.

use std::net::IpAddr;

use serde_json::Value as Json;

use super::watchlist::Watchlist;
use crate::net::Cidr;
use crate::playbook::record::value::{Literal, Val};

/// A query over records. Field ids index the playbook's field table.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    All(Vec<Query>),
    Any(Vec<Query>),
    Not(Box<Query>),
    Test { field: usize, test: Test },
}

/// A comparison operator for numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Equals,
    NotEquals,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl CmpOp {
    pub fn parse(text: &str) -> Option<CmpOp> {
        Some(match text {
            "equals" => CmpOp::Equals,
            "not_equals" => CmpOp::NotEquals,
            "greater" => CmpOp::Greater,
            "greater_or_equal" => CmpOp::GreaterOrEqual,
            "less" => CmpOp::Less,
            "less_or_equal" => CmpOp::LessOrEqual,
            _ => return None,
        })
    }

    pub const NAMES: &'static str =
        "equals, not_equals, greater, greater_or_equal, less, less_or_equal";

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CmpOp::Equals => left == right,
            CmpOp::NotEquals => left != right,
            CmpOp::Greater => left > right,
            CmpOp::GreaterOrEqual => left >= right,
            CmpOp::Less => left < right,
            CmpOp::LessOrEqual => left <= right,
        }
    }
}

/// A test on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Is(Literal),
    IsNot(Literal),
    In(Vec<Literal>),
    Within(Vec<Cidr>),
    Contains(String),
    Exists(bool),
    Compare(CmpOp, f64),
    Between(f64, f64),
    /// The field's value is a key of the watchlist with this index.
    InWatchlist(usize),
}

impl Query {
    /// Whether the record matches. `get` reads a field by id; a missing field fails every test
    /// except `is_not` and `exists: false`.
    pub fn matches<'a>(
        &self,
        get: &impl Fn(usize) -> Option<Val<'a>>,
        watchlists: &[Watchlist],
    ) -> bool {
        match self {
            Query::All(list) => list.iter().all(|q| q.matches(get, watchlists)),
            Query::Any(list) => list.iter().any(|q| q.matches(get, watchlists)),
            Query::Not(q) => !q.matches(get, watchlists),
            Query::Test { field, test } => test.matches(get(*field).as_ref(), watchlists),
        }
    }

    /// The field ids this query reads.
    pub fn fields(&self, out: &mut Vec<usize>) {
        match self {
            Query::All(list) | Query::Any(list) => list.iter().for_each(|q| q.fields(out)),
            Query::Not(q) => q.fields(out),
            Query::Test { field, .. } => out.push(*field),
        }
    }
}

impl Test {
    pub fn matches(&self, value: Option<&Val<'_>>, watchlists: &[Watchlist]) -> bool {
        let Some(value) = value.filter(|v| !matches!(v, Val::Null)) else {
            return matches!(self, Test::IsNot(_) | Test::Exists(false));
        };
        match self {
            Test::Is(lit) => any_element(value, |v| lit.matches(v)),
            Test::IsNot(lit) => !any_element(value, |v| lit.matches(v)),
            Test::In(list) => any_element(value, |v| list.iter().any(|lit| lit.matches(v))),
            Test::Within(nets) => any_element(value, |v| {
                v.to_text()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| nets.iter().any(|n| n.contains(ip)))
            }),
            Test::Contains(needle) => any_element(value, |v| v.to_text().contains(needle.as_str())),
            Test::Exists(want) => *want,
            Test::Compare(op, right) => value.as_f64().is_some_and(|left| op.holds(left, *right)),
            Test::Between(low, high) => value.as_f64().is_some_and(|v| *low <= v && v <= *high),
            Test::InWatchlist(i) => {
                any_element(value, |v| watchlists[*i].row(&v.to_text()).is_some())
            }
        }
    }
}

/// Applies `test` to a scalar, or to each element of an array (Zeek sets), as Elasticsearch does.
fn any_element(value: &Val<'_>, test: impl Fn(&Val<'_>) -> bool) -> bool {
    match value {
        Val::Json(Json::Array(items)) => items.iter().any(|item| test(&Val::from_json(item))),
        scalar => test(scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(rec: &'a [(usize, Val<'a>)]) -> impl Fn(usize) -> Option<Val<'a>> + 'a {
        move |f| rec.iter().find(|(i, _)| *i == f).map(|(_, v)| v.clone())
    }

    fn test(field: usize, test: Test) -> Query {
        Query::Test { field, test }
    }

    #[test]
    fn nested_groups_and_every_operator() {
        let rec = [
            (0, Val::Str("10.1.2.3".into())),
            (1, Val::Num(4444.0)),
            (2, Val::Str("HalfOpened".into())),
            (3, Val::Json(serde_json::json!(["a", "tunnel"]))),
        ];
        let g = get(&rec);
        let private = Test::Within(vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ]);
        let q = Query::All(vec![
            test(2, Test::Is(Literal::Str("HalfOpened".into()))),
            test(0, private.clone()),
            Query::Not(Box::new(test(
                1,
                Test::In(vec![Literal::Num(443.0), Literal::Num(80.0)]),
            ))),
            Query::Not(Box::new(test(1, Test::Between(49152.0, 65535.0)))),
            Query::Any(vec![
                test(1, Test::Compare(CmpOp::Greater, 5000.0)),
                test(1, Test::Compare(CmpOp::LessOrEqual, 4444.0)),
            ]),
            test(3, Test::Is(Literal::Str("tunnel".into()))),
            test(0, Test::Contains(".2.".into())),
            test(9, Test::Exists(false)),
            test(9, Test::IsNot(Literal::Str("x".into()))),
        ]);
        assert!(q.matches(&g, &[]));
        assert!(!test(9, Test::Is(Literal::Str("x".into()))).matches(&g, &[]));
        assert!(!test(9, Test::Compare(CmpOp::Greater, 0.0)).matches(&g, &[]));
        assert!(!test(2, Test::Compare(CmpOp::Greater, 0.0)).matches(&g, &[]));
        assert!(!test(2, private).matches(&g, &[]));
        let mut fields = Vec::new();
        q.fields(&mut fields);
        assert_eq!(fields, [2, 0, 1, 1, 1, 1, 3, 0, 9, 9]);
    }
}
