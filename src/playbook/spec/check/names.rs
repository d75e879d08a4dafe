//! Checking the names of an action's template against what it renders from: `ctx` (the payload
//! and run times), the buckets of the calculations it runs for, and the records of the source's
//! declared format. Names are looked up as the renderer looks them up (innermost frame first, a
//! dotted name inside the first frame that has its first part), over shapes instead of data.

use super::format_fields::{format_label, key_schema, record_schema, Schema};
use crate::playbook::act::action::{Action, ActionKind, ForEach};
use crate::playbook::act::condition::{Condition, ConditionKind, Threshold};
use crate::playbook::act::template::{Tag, Template};
use crate::playbook::record::format::{Accessor, FieldPlan, Format, CANONICAL_NAMES};
use crate::playbook::search::calc::{Calc, Terms};

/// The shape of a value a template may meet.
#[derive(Debug, Clone)]
enum Shape {
    /// Not known before the run (records of an undeclared or free-form format).
    Any,
    Value,
    List(Box<Shape>),
    Object {
        label: String,
        keys: Vec<(String, Shape)>,
    },
    /// A record (or part of one) of a declared format.
    Record {
        schema: Schema,
        zeek: bool,
    },
    /// What a template sees of one filtered record: its fields, canonical names and `_source`.
    Bindings(Format),
}

/// Whether a name has a value.
#[derive(Debug, Clone)]
enum Found {
    Yes(Shape),
    /// Only if a record carries a field its format does not declare.
    Maybe,
    No,
}

impl Found {
    /// The shape when found; a `Maybe` is noted in `maybe`, for [`Found::or_maybe`].
    fn note(self, maybe: &mut bool) -> Option<Shape> {
        match self {
            Found::Yes(s) => Some(s),
            Found::Maybe => {
                *maybe = true;
                None
            }
            Found::No => None,
        }
    }

    /// `No` becomes `Maybe` when a place on the way might hold the name.
    fn or_maybe(self, maybe: bool) -> Found {
        match self {
            Found::No if maybe => Found::Maybe,
            found => found,
        }
    }
}

fn object(label: impl Into<String>, keys: Vec<(&str, Shape)>) -> Shape {
    Shape::Object {
        label: label.into(),
        keys: keys.into_iter().map(|(k, s)| (k.to_string(), s)).collect(),
    }
}

fn record_shape(format: Option<Format>) -> Shape {
    match format.and_then(record_schema) {
        Some(schema) => Shape::Record {
            schema,
            zeek: format == Some(Format::Zeek),
        },
        None => Shape::Any,
    }
}

fn bindings(format: Option<Format>) -> Shape {
    match format {
        Some(f) if record_schema(f).is_some() => Shape::Bindings(f),
        _ => Shape::Any,
    }
}

impl Shape {
    /// The value of key `key` of this frame.
    fn get(&self, key: &str) -> Found {
        match self {
            Shape::Any => Found::Yes(Shape::Any),
            Shape::Value | Shape::List(_) => Found::No,
            Shape::Object { keys, .. } => keys
                .iter()
                .find(|(k, _)| k == key)
                .map_or(Found::No, |(_, s)| Found::Yes(s.clone())),
            Shape::Record { schema, zeek } => match key_schema(*schema, key, *zeek) {
                Some(Schema::Open) => Found::Yes(Shape::Any),
                Some(Schema::Leaf) => Found::Yes(Shape::Value),
                Some(inner) => Found::Yes(Shape::Record {
                    schema: inner,
                    zeek: *zeek,
                }),
                None if matches!(schema, Schema::Leaf) => Found::No,
                None => Found::Maybe,
            },
            Shape::Bindings(format) => {
                if key == "_source" {
                    return Found::Yes(record_shape(Some(*format)));
                }
                if CANONICAL_NAMES.contains(&key) {
                    let plan = FieldPlan::new(*format, &[key.to_string()]);
                    if plan.accessors[0] != Accessor::Absent {
                        return Found::Yes(Shape::Value);
                    }
                }
                record_shape(Some(*format)).get(key)
            }
        }
    }

    /// A record path inside this value: the literal dotted key, then every split of its dots.
    fn path(&self, path: &str) -> Found {
        let mut maybe = false;
        if let Some(s) = self.get(path).note(&mut maybe) {
            return Found::Yes(s);
        }
        for (i, _) in path.match_indices('.') {
            if let Some(inner) = self.get(&path[..i]).note(&mut maybe) {
                if let Some(s) = inner.path(&path[i + 1..]).note(&mut maybe) {
                    return Found::Yes(s);
                }
            }
        }
        Found::No.or_maybe(maybe)
    }

    /// What this frame offers, for a message.
    fn describe(&self) -> Option<String> {
        match self {
            Shape::Object { label, keys } => Some(format!(
                "{label}: {}",
                keys.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Shape::Bindings(format) => {
                let canonical: Vec<&str> = CANONICAL_NAMES
                    .iter()
                    .filter(|c| matches!(self.get(c), Found::Yes(_)))
                    .copied()
                    .collect();
                Some(format!(
                    "each record: the fields of {} records, `_source`, and {}",
                    format_label(*format),
                    canonical.join(", ")
                ))
            }
            _ => None,
        }
    }
}

/// Looks `name` up on `stack` (outermost first) as the renderer does.
fn lookup(name: &str, stack: &[Shape]) -> Found {
    if name == "." {
        return Found::Yes(stack.last().cloned().unwrap_or(Shape::Any));
    }
    let (first, rest) = name.split_once('.').unwrap_or((name, ""));
    let mut maybe = false;
    for frame in stack.iter().rev() {
        if matches!(frame, Shape::Value | Shape::List(_)) {
            continue;
        }
        if let Some(s) = frame.get(name).note(&mut maybe) {
            return Found::Yes(s);
        }
        if rest.is_empty() {
            continue;
        }
        if let Some(s) = frame.get(first).note(&mut maybe) {
            return s.path(rest).or_maybe(maybe);
        }
    }
    Found::No.or_maybe(maybe)
}

/// For a dotted name that cannot resolve: what the deepest object it reaches holds.
fn deepest(name: &str, stack: &[Shape]) -> Option<String> {
    let mut parts = name.split('.');
    let Found::Yes(mut shape) = lookup(parts.next()?, stack) else {
        return None;
    };
    let mut reached = None;
    for part in parts {
        if matches!(shape, Shape::Object { .. }) {
            reached = shape.describe();
        }
        match shape.get(part) {
            Found::Yes(inner) => shape = inner,
            _ => break,
        }
    }
    reached
}

/// The shape of a calculation's entry in `aggregations`.
fn agg_shape(calc: &Calc) -> Shape {
    match calc {
        Calc::Terms(t) => object(
            format!("calculation `{}`", t.name),
            vec![
                ("buckets", Shape::List(Box::new(bucket_shape(t)))),
                ("sum_other_doc_count", Shape::Value),
            ],
        ),
        Calc::Metric(m) => object(
            format!("metric `{}`", m.name),
            vec![("value", Shape::Value)],
        ),
    }
}

fn bucket_shape(t: &Terms) -> Shape {
    let mut keys = vec![
        ("key", Shape::Value),
        ("doc_count", Shape::Value),
        (t.field_name.as_str(), Shape::Value),
    ];
    if t.rank_by.is_some() {
        keys.push((
            "metric",
            object("the ranking metric", vec![("value", Shape::Value)]),
        ));
    }
    keys.extend(t.subgroups.iter().map(|c| (c.name(), agg_shape(c))));
    object(format!("a `{}` bucket", t.name), keys)
}

/// `{"ctx": ...}` as the actions see it.
fn root_shape(calcs: &[Calc], format: Option<Format>) -> Shape {
    let aggregations = object(
        "ctx.payload.aggregations",
        calcs.iter().map(|c| (c.name(), agg_shape(c))).collect(),
    );
    let payload = object(
        "ctx.payload",
        vec![
            (
                "hits",
                object(
                    "ctx.payload.hits",
                    vec![(
                        "total",
                        object("ctx.payload.hits.total", vec![("value", Shape::Value)]),
                    )],
                ),
            ),
            ("filtered_total", Shape::Value),
            ("filtered", Shape::List(Box::new(bindings(format)))),
            ("aggregations", aggregations),
        ],
    );
    let trigger = object(
        "ctx.trigger",
        vec![
            ("scheduled_time", Shape::Value),
            ("triggered_time", Shape::Value),
        ],
    );
    let ctx = object(
        "ctx",
        vec![
            ("payload", payload),
            ("execution_time", Shape::Value),
            ("trigger", trigger),
            (
                "metadata",
                object("ctx.metadata", vec![("name", Shape::Value)]),
            ),
        ],
    );
    object("the top", vec![("ctx", ctx)])
}

/// The bucket frames of the results of the calculation at the end of `chain`.
fn chain_frames(calcs: &[Calc], chain: &[String], metric: bool) -> Vec<Shape> {
    let mut frames = Vec::new();
    let mut level = calcs;
    for (i, name) in chain.iter().enumerate() {
        let last = i + 1 == chain.len();
        match level.iter().find(|c| c.name() == name) {
            Some(Calc::Terms(t)) => {
                frames.push(bucket_shape(t));
                level = &t.subgroups;
            }
            Some(Calc::Metric(_)) if last && metric => {}
            _ => return vec![Shape::Any],
        }
    }
    frames
}

/// The context stack an action renders each time with.
fn base_stack(
    action: &Action,
    calcs: &[Calc],
    conditions: &[Condition],
    format: Option<Format>,
) -> Vec<Shape> {
    let mut stack = vec![root_shape(calcs, format)];
    match &action.for_each {
        ForEach::Run => {}
        ForEach::Filtered => stack.push(bindings(format)),
        ForEach::Calc { chain, metric } => stack.extend(chain_frames(calcs, chain, *metric)),
        ForEach::Matches => match conditions
            .iter()
            .find(|c| c.name == action.trigger)
            .map(|c| &c.kind)
        {
            Some(ConditionKind::List(list)) => {
                stack.extend(chain_frames(calcs, &list.chain, list.metric));
                if matches!(list.threshold, Threshold::Watchlist { .. }) {
                    stack.push(object("the watchlist row", vec![("watchlist", Shape::Any)]));
                }
            }
            _ => stack.push(Shape::Any),
        },
    }
    stack
}

/// A template name that cannot resolve: an error if it never can, a warning if only records
/// carrying a field their format does not declare would give it a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub never: bool,
    pub message: String,
}

/// Checks every name of `action`'s template.
pub fn check_action_names(
    action: &Action,
    calcs: &[Calc],
    conditions: &[Condition],
    format: Option<Format>,
) -> Vec<Unresolved> {
    let template: &Template = match &action.kind {
        ActionKind::RunScript { script, .. } => script,
        ActionKind::Webhook { body, .. } => body,
        ActionKind::CreateAlert { .. } => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut stack = base_stack(action, calcs, conditions, format);
    walk(
        &template.tags(),
        &mut stack,
        &mut Vec::new(),
        &mut |found, name, stack, sections| {
            let place = match sections.last() {
                Some(s) => format!("inside `{{{{#{s}}}}}`"),
                None => format!(
                    "in the action's context (for_each: {})",
                    for_each_name(action)
                ),
            };
            let mut available: Vec<String> =
                stack.iter().rev().filter_map(Shape::describe).collect();
            if let Some(inner) = deepest(name, stack) {
                available.insert(0, inner);
            }
            let (never, what) = match found {
                Found::No => (true, "cannot resolve"),
                _ => (false, "names no field its records declare"),
            };
            out.push(Unresolved {
                never,
                message: format!(
                "action `{}`: `{{{{{name}}}}}` {what} {place}; names there, innermost first: {}",
                action.name,
                available.join("; ")
            ),
            });
        },
    );
    out
}

fn for_each_name(action: &Action) -> String {
    match &action.for_each {
        ForEach::Run => "run".into(),
        ForEach::Filtered => "filtered".into(),
        ForEach::Matches => "matches".into(),
        ForEach::Calc { chain, .. } => chain.last().cloned().unwrap_or_default(),
    }
}

type Report<'r> = dyn FnMut(Found, &str, &[Shape], &[&str]) + 'r;

fn walk<'t>(
    tags: &[Tag<'t>],
    stack: &mut Vec<Shape>,
    sections: &mut Vec<&'t str>,
    report: &mut Report<'_>,
) {
    for tag in tags {
        match tag {
            Tag::Var(name) => match lookup(name, stack) {
                Found::Yes(_) => {}
                found => report(found, name, stack, sections),
            },
            Tag::Section {
                name,
                inverted: true,
                children,
            } => {
                sections.push(name);
                walk(children, stack, sections, report);
                sections.pop();
            }
            Tag::Section { name, children, .. } => {
                let frame = match lookup(name, stack) {
                    Found::Yes(Shape::List(item)) => *item,
                    Found::Yes(shape) => shape,
                    found => {
                        let never = matches!(found, Found::No);
                        report(found, name, stack, sections);
                        if never {
                            // The section never renders; its names would only repeat the report.
                            continue;
                        }
                        Shape::Any
                    }
                };
                stack.push(frame);
                sections.push(name);
                walk(children, stack, sections, report);
                sections.pop();
                stack.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests;
