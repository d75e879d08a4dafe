//! Field values read from log records: how they compare, group and print.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value as Json;

/// One field of a log record. Strings borrow from the line they were read from when they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An array or object, kept whole (rare: queries and groups look at scalars).
    Json(Json),
}

/// Whether two readings of a record's fields are identical: equal values, numbers to the bit,
/// strings borrowed or not alike (the extractor's differential checks, tests and fuzz target).
pub fn same_slots(a: &[Option<Val<'_>>], b: &[Option<Val<'_>>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(Val::Num(x)), Some(Val::Num(y))) => x.to_bits() == y.to_bits(),
            (Some(Val::Str(x)), Some(Val::Str(y))) => {
                x == y && matches!(x, Cow::Borrowed(_)) == matches!(y, Cow::Borrowed(_))
            }
            (x, y) => x == y,
        })
}

impl<'a> Val<'a> {
    /// Converts a parsed JSON value, borrowing nothing.
    pub fn from_json(value: &Json) -> Val<'a> {
        match value {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => Val::Str(Cow::Owned(s.clone())),
            other => Val::Json(other.clone()),
        }
    }

    /// The value as a number: numbers, and strings that parse as one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as text, the way a user would write it in a playbook.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Val::Null => Cow::Borrowed("null"),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Num(n) => Cow::Owned(format_number(*n)),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Json(j) => Cow::Owned(j.to_string()),
        }
    }

    /// The grouping key of this value; `None` for null (ungrouped, as in Elasticsearch).
    pub fn key(&self) -> Option<KeyRef<'_>> {
        match self {
            Val::Null => None,
            Val::Bool(b) => Some(KeyRef::Bool(*b)),
            Val::Num(n) => Some(KeyRef::Num(*n)),
            Val::Str(s) => Some(KeyRef::Str(s)),
            Val::Json(_) => None,
        }
    }

    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Num(n) => Val::Num(n),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Json(j) => Val::Json(j),
        }
    }
}

/// Prints integral numbers without a fraction (`22`, not `22.0`).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A number as JSON: integral values become JSON integers.
pub fn number_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// Turns a value back into JSON (for `_source`).
pub fn val_to_json(val: Val<'_>) -> Json {
    match val {
        Val::Null => Json::Null,
        Val::Bool(b) => Json::Bool(b),
        Val::Num(n) => number_json(n),
        Val::Str(s) => Json::String(s.into_owned()),
        Val::Json(j) => j,
    }
}

/// A borrowed grouping key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyRef<'a> {
    Bool(bool),
    Num(f64),
    Str(&'a str),
}

/// An owned grouping key, stored in aggregation buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Bool(bool),
    /// The bits of an `f64` (`-0.0` is normalised to `0.0`).
    Num(u64),
    Str(Box<str>),
}

impl Key {
    pub fn num(n: f64) -> Key {
        Key::Num(if n == 0.0 {
            0f64.to_bits()
        } else {
            n.to_bits()
        })
    }

    pub fn to_json(&self) -> Json {
        match self {
            Key::Bool(b) => Json::Bool(*b),
            Key::Num(bits) => number_json(f64::from_bits(*bits)),
            Key::Str(s) => Json::String(s.to_string()),
        }
    }

    /// Elasticsearch's `_key` order: numbers numerically, then strings, booleans last.
    pub fn cmp_key(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => f64::from_bits(*a).total_cmp(&f64::from_bits(*b)),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Key::Num(_) => 0,
            Key::Str(_) => 1,
            Key::Bool(_) => 2,
        }
    }
}

impl From<KeyRef<'_>> for Key {
    fn from(k: KeyRef<'_>) -> Key {
        match k {
            KeyRef::Bool(b) => Key::Bool(b),
            KeyRef::Num(n) => Key::num(n),
            KeyRef::Str(s) => Key::Str(s.into()),
        }
    }
}

/// A literal written in a playbook (`is: 22`, `in: [tcp, udp]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    Num(f64),
    Str(String),
}

impl Literal {
    pub fn from_json(value: &Json) -> Option<Literal> {
        match value {
            Json::Bool(b) => Some(Literal::Bool(*b)),
            Json::Number(n) => n.as_f64().map(Literal::Num),
            Json::String(s) => Some(Literal::Str(s.clone())),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Literal::Num(n) => Some(*n),
            Literal::Str(s) => s.trim().parse().ok(),
            Literal::Bool(_) => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Literal::Bool(b) => Json::Bool(*b),
            Literal::Num(n) => number_json(*n),
            Literal::Str(s) => Json::String(s.clone()),
        }
    }

    /// Equality the way a user means it: `22` equals `"22"`, `true` equals `"true"`.
    pub fn matches(&self, value: &Val<'_>) -> bool {
        match (self, value) {
            (Literal::Str(a), Val::Str(b)) => a == b.as_ref(),
            (Literal::Bool(a), Val::Bool(b)) => a == b,
            (lit, val) => match (lit.as_f64(), val.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => match lit {
                    Literal::Str(s) => *s == val.to_text(),
                    Literal::Bool(b) => val.to_text() == if *b { "true" } else { "false" },
                    Literal::Num(_) => false,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_compare_like_users_expect() {
        assert!(Literal::Num(22.0).matches(&Val::Str("22".into())));
        assert!(Literal::Str("22".into()).matches(&Val::Num(22.0)));
        assert!(Literal::Str("tcp".into()).matches(&Val::Str("tcp".into())));
        assert!(!Literal::Str("TCP".into()).matches(&Val::Str("tcp".into())));
        assert!(Literal::Bool(true).matches(&Val::Bool(true)));
        assert_eq!(format_number(22.0), "22");
        assert_eq!(format_number(0.5), "0.5");
    }
}
