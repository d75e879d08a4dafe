//! Calculations: Top/Bottom groups with nested subgroups and Metric values, accumulated record by
//! record (memory grows with the number of groups, not of records) and printed the way
//! Elasticsearch prints aggregations.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde_json::{json, Map, Value as Json};

use crate::playbook::record::value::{number_json, Key, KeyRef, Val};

/// A checked calculation.
#[derive(Debug, Clone, PartialEq)]
pub enum Calc {
    Terms(Terms),
    Metric(Metric),
}

/// Top or Bottom: groups by a field, ranks groups by count or by a metric, keeps `size`.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub name: String,
    pub field: usize,
    pub field_name: String,
    pub bottom: bool,
    /// `None` ranks by count; otherwise by this metric (named `metric` in the buckets).
    pub rank_by: Option<Metric>,
    pub size: usize,
    pub subgroups: Vec<Calc>,
}

/// A metric over a field: average, maximum, minimum, sum or unique count.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub op: MetricOp,
    pub field: usize,
    pub field_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricOp {
    Average,
    Maximum,
    Minimum,
    Sum,
    UniqueCount,
}

impl MetricOp {
    pub fn parse(text: &str) -> Option<MetricOp> {
        Some(match text {
            "average" => MetricOp::Average,
            "maximum" => MetricOp::Maximum,
            "minimum" => MetricOp::Minimum,
            "sum" => MetricOp::Sum,
            "unique_count" => MetricOp::UniqueCount,
            _ => return None,
        })
    }

    /// The Elasticsearch aggregation that computes this metric.
    pub fn es_name(self) -> &'static str {
        match self {
            MetricOp::Average => "avg",
            MetricOp::Maximum => "max",
            MetricOp::Minimum => "min",
            MetricOp::Sum => "sum",
            MetricOp::UniqueCount => "cardinality",
        }
    }
}

impl Calc {
    pub fn name(&self) -> &str {
        match self {
            Calc::Terms(t) => &t.name,
            Calc::Metric(m) => &m.name,
        }
    }

    /// Finds the calculation called `name` and the names leading to it (outermost first).
    pub fn find<'c>(calcs: &'c [Calc], name: &str) -> Option<(Vec<&'c str>, &'c Calc)> {
        for calc in calcs {
            if calc.name() == name {
                return Some((vec![calc.name()], calc));
            }
            if let Calc::Terms(t) = calc {
                if let Some((mut chain, found)) = Calc::find(&t.subgroups, name) {
                    chain.insert(0, calc.name());
                    return Some((chain, found));
                }
            }
        }
        None
    }
}

/// The running value of a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Acc {
    Average { sum: f64, count: u64 },
    Maximum(Option<f64>),
    Minimum(Option<f64>),
    Sum(f64),
    Unique(HashSet<Key>),
}

impl Acc {
    fn new(op: MetricOp) -> Acc {
        match op {
            MetricOp::Average => Acc::Average { sum: 0.0, count: 0 },
            MetricOp::Maximum => Acc::Maximum(None),
            MetricOp::Minimum => Acc::Minimum(None),
            MetricOp::Sum => Acc::Sum(0.0),
            MetricOp::UniqueCount => Acc::Unique(HashSet::default()),
        }
    }

    fn push(&mut self, value: Option<Val<'_>>) {
        let Some(value) = value else { return };
        if let Acc::Unique(set) = self {
            if let Some(key) = value.key() {
                if !set.contains(&Key::from(key)) {
                    set.insert(key.into());
                }
            }
            return;
        }
        let Some(n) = value.as_f64() else { return };
        match self {
            Acc::Average { sum, count } => {
                *sum += n;
                *count += 1;
            }
            Acc::Maximum(m) => *m = Some(m.map_or(n, |m| m.max(n))),
            Acc::Minimum(m) => *m = Some(m.map_or(n, |m| m.min(n))),
            Acc::Sum(s) => *s += n,
            Acc::Unique(_) => {}
        }
    }

    fn merge(&mut self, other: Acc) {
        match (self, other) {
            (Acc::Average { sum, count }, Acc::Average { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (Acc::Maximum(a), Acc::Maximum(Some(b))) => *a = Some(a.map_or(b, |a| a.max(b))),
            (Acc::Minimum(a), Acc::Minimum(Some(b))) => *a = Some(a.map_or(b, |a| a.min(b))),
            (Acc::Sum(a), Acc::Sum(b)) => *a += b,
            (Acc::Unique(a), Acc::Unique(b)) => a.extend(b),
            _ => {}
        }
    }

    /// The metric's value; `None` (JSON null) when no record had a number, as in Elasticsearch.
    pub fn value(&self) -> Option<f64> {
        match self {
            Acc::Average { sum, count } => (*count > 0).then(|| sum / *count as f64),
            Acc::Maximum(m) | Acc::Minimum(m) => *m,
            Acc::Sum(s) => Some(*s),
            Acc::Unique(set) => Some(set.len() as f64),
        }
    }
}

/// The running state of the calculations of a playbook (or of one bucket's subgroups).
#[derive(Debug, Clone, Default)]
pub struct CalcState {
    states: Vec<State>,
}

#[derive(Debug, Clone)]
enum State {
    Terms(Groups),
    Metric(Acc),
}

/// Buckets by key; strings are looked up by `&str`, so a known group costs no allocation, and
/// index their buckets, so that it costs one lookup.
#[derive(Debug, Clone, Default)]
struct Groups {
    strs: HashMap<Box<str>, usize>,
    str_buckets: Vec<Bucket>,
    nums: HashMap<u64, Bucket>,
    bools: [Option<Box<Bucket>>; 2],
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    doc_count: u64,
    rank: Option<Box<Acc>>,
    children: CalcState,
}

impl Bucket {
    fn new(terms: &Terms) -> Bucket {
        Bucket {
            doc_count: 0,
            rank: terms.rank_by.as_ref().map(|m| Box::new(Acc::new(m.op))),
            children: CalcState::new(&terms.subgroups),
        }
    }

    fn merge(&mut self, other: Bucket) {
        self.doc_count += other.doc_count;
        if let (Some(a), Some(b)) = (&mut self.rank, other.rank) {
            a.merge(*b);
        }
        self.children.merge(other.children);
    }
}

impl Groups {
    fn bucket(&mut self, key: KeyRef<'_>, terms: &Terms) -> &mut Bucket {
        match key {
            KeyRef::Str(s) => {
                let i = match self.strs.get(s) {
                    Some(i) => *i,
                    None => {
                        self.strs.insert(s.into(), self.str_buckets.len());
                        self.str_buckets.push(Bucket::new(terms));
                        self.str_buckets.len() - 1
                    }
                };
                &mut self.str_buckets[i]
            }
            KeyRef::Num(n) => {
                let Key::Num(bits) = Key::num(n) else {
                    unreachable!("Key::num makes a Num")
                };
                self.nums.entry(bits).or_insert_with(|| Bucket::new(terms))
            }
            KeyRef::Bool(b) => {
                self.bools[usize::from(b)].get_or_insert_with(|| Box::new(Bucket::new(terms)))
            }
        }
    }

    fn merge(&mut self, mut other: Groups) {
        for (k, i) in other.strs {
            let b = std::mem::take(&mut other.str_buckets[i]);
            match self.strs.get(&k) {
                Some(mine) => self.str_buckets[*mine].merge(b),
                None => {
                    self.strs.insert(k, self.str_buckets.len());
                    self.str_buckets.push(b);
                }
            }
        }
        for (k, b) in other.nums {
            match self.nums.get_mut(&k) {
                Some(mine) => mine.merge(b),
                None => {
                    self.nums.insert(k, b);
                }
            }
        }
        for (mine, theirs) in self.bools.iter_mut().zip(other.bools) {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(*t),
                (None, t) => *mine = t,
                (Some(_), None) => {}
            }
        }
    }

    fn into_buckets(mut self) -> Vec<(Key, Bucket)> {
        let buckets = &mut self.str_buckets;
        let strs = self
            .strs
            .into_iter()
            .map(|(k, i)| (Key::Str(k), std::mem::take(&mut buckets[i])));
        let nums = self.nums.into_iter().map(|(k, b)| (Key::Num(k), b));
        let bools = self
            .bools
            .into_iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| (Key::Bool(i == 1), *b)));
        strs.chain(nums).chain(bools).collect()
    }
}

impl CalcState {
    pub fn new(calcs: &[Calc]) -> CalcState {
        let states = calcs
            .iter()
            .map(|c| match c {
                Calc::Terms(_) => State::Terms(Groups::default()),
                Calc::Metric(m) => State::Metric(Acc::new(m.op)),
            })
            .collect();
        CalcState { states }
    }

    /// Adds one matching record; `get` reads a field by id.
    pub fn push<'a>(&mut self, calcs: &[Calc], get: &impl Fn(usize) -> Option<Val<'a>>) {
        for (calc, state) in calcs.iter().zip(&mut self.states) {
            match (calc, state) {
                (Calc::Terms(t), State::Terms(groups)) => {
                    let Some(value) = get(t.field) else { continue };
                    let Some(key) = value.key() else { continue };
                    let bucket = groups.bucket(key, t);
                    bucket.doc_count += 1;
                    if let (Some(acc), Some(m)) = (&mut bucket.rank, &t.rank_by) {
                        acc.push(get(m.field));
                    }
                    bucket.children.push(&t.subgroups, get);
                }
                (Calc::Metric(m), State::Metric(acc)) => acc.push(get(m.field)),
                _ => unreachable!("states are built from the same calculations"),
            }
        }
    }

    /// Adds the state of another worker that saw other records.
    pub fn merge(&mut self, other: CalcState) {
        for (mine, theirs) in self.states.iter_mut().zip(other.states) {
            match (mine, theirs) {
                (State::Terms(a), State::Terms(b)) => a.merge(b),
                (State::Metric(a), State::Metric(b)) => a.merge(b),
                _ => unreachable!("states are built from the same calculations"),
            }
        }
    }

    /// The `aggregations` object: each calculation by name, shaped like Elasticsearch's.
    pub fn finish(self, calcs: &[Calc]) -> Map<String, Json> {
        let mut out = Map::new();
        for (calc, state) in calcs.iter().zip(self.states) {
            let value = match (calc, state) {
                (Calc::Terms(t), State::Terms(groups)) => terms_json(t, groups),
                (Calc::Metric(_), State::Metric(acc)) => metric_json(acc.value()),
                _ => unreachable!("states are built from the same calculations"),
            };
            out.insert(calc.name().to_string(), value);
        }
        out
    }
}

pub fn metric_json(value: Option<f64>) -> Json {
    json!({ "value": value.map_or(Json::Null, number_json) })
}

fn terms_json(terms: &Terms, groups: Groups) -> Json {
    let mut buckets = groups.into_buckets();
    let total: u64 = buckets.iter().map(|(_, b)| b.doc_count).sum();
    let rank = |b: &Bucket| match &b.rank {
        Some(acc) => acc.value().unwrap_or(f64::NEG_INFINITY),
        None => b.doc_count as f64,
    };
    buckets.sort_by(|(ka, a), (kb, b)| {
        let by_rank = if terms.bottom {
            rank(a).total_cmp(&rank(b))
        } else {
            rank(b).total_cmp(&rank(a))
        };
        by_rank.then_with(|| ka.cmp_key(kb))
    });
    buckets.truncate(terms.size);
    let shown: u64 = buckets.iter().map(|(_, b)| b.doc_count).sum();
    let list: Vec<Json> = buckets
        .into_iter()
        .map(|(key, bucket)| {
            let mut obj = Map::new();
            obj.insert("key".into(), key.to_json());
            obj.insert("doc_count".into(), Json::from(bucket.doc_count));
            obj.insert(terms.field_name.clone(), key.to_json());
            if let Some(acc) = &bucket.rank {
                obj.insert("metric".into(), metric_json(acc.value()));
            }
            obj.extend(bucket.children.finish(&terms.subgroups));
            Json::Object(obj)
        })
        .collect();
    json!({ "buckets": list, "sum_other_doc_count": total - shown })
}

#[cfg(test)]
mod tests;
