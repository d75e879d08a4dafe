//! The line prefilter: when a query requires `field is "text"` (at its top level) of a field
//! read verbatim from JSON, a matching NDJSON record must contain `"text"`, unless it uses a
//! JSON escape. A line with neither cannot match and is skipped unparsed.

use memchr::memmem::Finder;

use super::query::{Query, Test};
use crate::playbook::record::format::{Accessor, FieldPlan};
use crate::playbook::record::value::Literal;

/// The quoted texts every matching line contains.
#[derive(Debug, Default)]
pub struct Prefilter {
    needles: Vec<Finder<'static>>,
}

impl Prefilter {
    /// The texts `query` requires of records read with `plan`: one per `field is "text"` test
    /// at its top level on a field read verbatim (not numbers, booleans or derived fields).
    pub fn new(query: Option<&Query>, plan: &FieldPlan) -> Prefilter {
        let tests: Vec<&Query> = match query {
            Some(Query::All(list)) => list.iter().collect(),
            Some(q) => vec![q],
            None => Vec::new(),
        };
        let needles = tests
            .into_iter()
            .filter_map(|q| match q {
                Query::Test {
                    field,
                    test: Test::Is(Literal::Str(text)),
                } if matches!(plan.accessors[*field], Accessor::Slot(_)) => Some(text),
                _ => None,
            })
            .filter(|text| {
                let plain = text
                    .chars()
                    .all(|c| c != '"' && c != '\\' && !c.is_control());
                let scalar_like = text.trim().parse::<f64>().is_ok()
                    || matches!(text.as_str(), "true" | "false")
                    || text.starts_with(['{', '['])
                    || text.is_empty();
                plain && !scalar_like
            })
            .map(|text| Finder::new(format!("\"{text}\"").as_bytes()).into_owned())
            .collect();
        Prefilter { needles }
    }

    /// Whether every line must be parsed.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether `line` may match: it has every required text, or an escape that may hide one.
    pub fn may_match(&self, line: &[u8]) -> bool {
        self.needles.is_empty()
            || memchr::memchr(b'\\', line).is_some()
            || self.needles.iter().all(|n| n.find(line).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::record::format::Format;

    fn prefilter(query: &Query, fields: &[&str]) -> Prefilter {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        Prefilter::new(Some(query), &FieldPlan::new(Format::Suricata, &fields))
    }

    fn is(field: usize, text: &str) -> Query {
        Query::Test {
            field,
            test: Test::Is(Literal::Str(text.into())),
        }
    }

    #[test]
    fn required_texts_skip_lines_without_them_unless_escaped() {
        let query = Query::All(vec![is(1, "alert"), is(2, "ssh")]);
        let p = prefilter(&query, &["timestamp", "event_type", "app_proto"]);
        assert!(p.may_match(br#"{"event_type":"alert","app_proto":"ssh"}"#));
        assert!(!p.may_match(br#"{"event_type":"flow","app_proto":"ssh"}"#));
        assert!(!p.may_match(br#"{"event_type":"alerts","app_proto":"ssh"}"#));
        assert!(p.may_match(br#"{"event_type":"\u0061lert","app_proto":"ssh"}"#));
    }

    #[test]
    fn derived_numeric_and_nested_tests_require_nothing() {
        let fields = ["timestamp", "state", "dest_port", "event_type"];
        for query in [
            is(1, "HalfOpened"),
            is(2, "22"),
            is(3, "true"),
            is(3, ""),
            is(3, "a\"b"),
            Query::Any(vec![is(3, "alert")]),
            Query::Not(Box::new(is(3, "alert"))),
        ] {
            assert!(prefilter(&query, &fields).is_empty(), "{query:?}");
        }
    }
}
