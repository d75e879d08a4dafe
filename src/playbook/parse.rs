//! Reading one record: NDJSON lines (only the planned fields are kept, borrowed from the line),
//! parsed JSON values, and Zeek TSV lines typed by their `#fields`/`#types` header.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use super::source::lookup_json;
use super::value::Val;

mod fast;
mod scan;

/// The native paths of a [`super::source::FieldPlan`] as a tree of JSON keys.
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    children: Vec<(Box<str>, PathTree)>,
    slot: Option<usize>,
    /// Paths captured whole at this node whose slots are then read from inside it.
    inner: Vec<(String, usize)>,
    /// Bit `min(len, 63)` is set for the length of each child's key: most keys of a record are
    /// not wanted, and most of those are told apart by their length alone.
    lens: u64,
}

impl PathTree {
    pub fn new(paths: &[String]) -> PathTree {
        let mut root = PathTree::default();
        for (slot, path) in paths.iter().enumerate() {
            root.insert(path, slot);
        }
        root.settle();
        root
    }

    /// Inserts the path as a literal key and as every split of its dots.
    fn insert(&mut self, path: &str, slot: usize) {
        self.child(path).slot = Some(slot);
        for (i, _) in path.match_indices('.') {
            self.child(&path[..i]).insert(&path[i + 1..], slot);
        }
    }

    fn child(&mut self, key: &str) -> &mut PathTree {
        match self.children.iter().position(|(k, _)| &**k == key) {
            Some(i) => &mut self.children[i].1,
            None => {
                self.lens |= 1 << key.len().min(63);
                self.children.push((key.into(), PathTree::default()));
                &mut self.children.last_mut().expect("just pushed").1
            }
        }
    }

    /// A node that is both captured and descended into is captured whole; its descendants'
    /// slots are then read from the captured value.
    fn settle(&mut self) {
        for (_, child) in &mut self.children {
            if child.slot.is_some() && !child.children.is_empty() {
                let mut inner = Vec::new();
                child.collect_slots("", &mut inner);
                child.children.clear();
                child.lens = 0;
                child.inner = inner;
            } else {
                child.settle();
            }
        }
    }

    fn collect_slots(&self, prefix: &str, out: &mut Vec<(String, usize)>) {
        for (key, child) in &self.children {
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            if let Some(slot) = child.slot {
                out.push((path.clone(), slot));
            }
            child.collect_slots(&path, out);
        }
    }

    fn find(&self, key: &str) -> Option<&PathTree> {
        // Length and first byte first: most keys of a record are not wanted.
        let (len, first) = (key.len(), key.as_bytes().first());
        self.children
            .iter()
            .find(|(k, _)| k.len() == len && k.as_bytes().first() == first && &**k == key)
            .map(|(_, c)| c)
    }

    /// [`PathTree::find`] for a key given as its raw bytes (a JSON string without escapes).
    #[inline]
    fn find_bytes(&self, key: &[u8]) -> Option<&PathTree> {
        if self.lens & (1 << key.len().min(63)) == 0 {
            return None;
        }
        let (len, first) = (key.len(), key.first());
        self.children
            .iter()
            .find(|(k, _)| k.len() == len && k.as_bytes().first() == first && k.as_bytes() == key)
            .map(|(_, c)| c)
    }
}

/// Fills `slots` from a whole JSON record (JSON arrays, `_source` of search hits).
pub fn fill_from_json<'a>(record: &Json, paths: &[String], slots: &mut [Option<Val<'a>>]) {
    for (slot, path) in paths.iter().enumerate() {
        slots[slot] = lookup_json(record, path).map(Val::from_json);
    }
}

/// Why an NDJSON line was not read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Parses one NDJSON line into `slots` (which start empty), keeping only the planned paths.
///
/// A hand-written extractor reads the line; what it cannot vouch for (malformed lines among them)
/// is read again by [`parse_json_line_serde`], which decides the result and the error message.
/// A line that is not UTF-8 is refused whatever else is wrong with it.
pub fn parse_json_bytes<'de>(
    line: &'de [u8],
    tree: &PathTree,
    slots: &mut [Option<Val<'de>>],
) -> Result<(), LineError> {
    let fast = match fast::extract(line, tree, slots) {
        Ok((end, ascii)) if end == line.len() => Some(ascii),
        _ => None,
    };
    if fast == Some(true) {
        return Ok(());
    }
    let Ok(text) = std::str::from_utf8(line) else {
        slots.fill(None);
        return Err(LineError::NotUtf8);
    };
    if fast.is_some() {
        return Ok(());
    }
    slots.fill(None);
    Ok(parse_json_line_serde(text, tree, slots)?)
}

/// Reads the NDJSON record at the start of `text` (a block of lines) if the fast path can vouch
/// for it, and returns the length of its line (up to the line break). `None` says nothing about
/// the line (and may leave slots filled): find its end and use [`parse_json_bytes`].
pub fn parse_json_record<'de>(
    text: &'de [u8],
    tree: &PathTree,
    slots: &mut [Option<Val<'de>>],
) -> Option<usize> {
    match fast::extract(text, tree, slots) {
        Ok((end, true)) => Some(end),
        Ok((end, false)) => std::str::from_utf8(&text[..end]).is_ok().then_some(end),
        Err(_) => None,
    }
}

/// [`parse_json_bytes`] for a line known to be UTF-8.
pub fn parse_json_line<'de>(
    line: &'de str,
    tree: &PathTree,
    slots: &mut [Option<Val<'de>>],
) -> Result<(), serde_json::Error> {
    match parse_json_bytes(line.as_bytes(), tree, slots) {
        Ok(()) => Ok(()),
        Err(LineError::Json(e)) => Err(e),
        Err(LineError::NotUtf8) => unreachable!("a str is UTF-8"),
    }
}

/// [`parse_json_line`] by `serde_json` alone, with a visitor seeded by the tree: the reference
/// the fast path is tested against.
pub fn parse_json_line_serde<'de>(
    line: &'de str,
    tree: &PathTree,
    slots: &mut [Option<Val<'de>>],
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(line);
    MapSeed { node: tree, slots }.deserialize(&mut de)?;
    de.end()
}

struct MapSeed<'t, 's, 'de> {
    node: &'t PathTree,
    slots: &'s mut [Option<Val<'de>>],
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! ignore_scalars {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<(), E> { Ok(()) })*
    };
}

impl<'de> Visitor<'de> for MapSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    ignore_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(StrSeed)? {
            match self.node.find(&key) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(child) if child.slot.is_some() => {
                    let value = map.next_value_seed(ValSeed)?;
                    if let (Val::Json(json), false) = (&value, child.inner.is_empty()) {
                        for (path, slot) in &child.inner {
                            self.slots[*slot] = lookup_json(json, path).map(Val::from_json);
                        }
                    }
                    self.slots[child.slot.expect("checked")] = Some(value);
                }
                Some(child) => map.next_value_seed(MapSeed {
                    node: child,
                    slots: &mut *self.slots,
                })?,
            }
        }
        Ok(())
    }
}

/// A string, borrowed from the input when it has no escapes.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// Any JSON value as a [`Val`], strings borrowed when possible.
struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::Num(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Json::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Val::Json)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Json::deserialize(de::value::MapAccessDeserializer::new(map)).map(Val::Json)
    }
}

/// The header of a Zeek TSV log: column names and types, separators, and the unset markers.
#[derive(Debug, Clone, Default)]
pub struct ZeekHeader {
    pub fields: Vec<String>,
    pub types: Vec<String>,
    pub set_separator: String,
    pub empty_field: String,
    pub unset_field: String,
}

impl ZeekHeader {
    /// Reads a `#` header line into the header. Returns false for a line that is not a header.
    pub fn read_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.strip_prefix('#') else {
            return false;
        };
        let (name, value) = rest.split_once(['\t', ' ']).unwrap_or((rest, ""));
        match name {
            "fields" => self.fields = value.split('\t').map(str::to_string).collect(),
            "types" => self.types = value.split('\t').map(str::to_string).collect(),
            "set_separator" => self.set_separator = unescape_zeek(value).into_owned(),
            "empty_field" => self.empty_field = value.to_string(),
            "unset_field" => self.unset_field = value.to_string(),
            _ => {}
        }
        true
    }

    /// For each column, the slot it fills (or `None`), given the plan's native paths.
    pub fn column_slots(&self, paths: &[String]) -> Vec<Option<usize>> {
        self.fields
            .iter()
            .map(|f| paths.iter().position(|p| p == f))
            .collect()
    }

    /// Parses one data line. Returns false if it has fewer columns than the header (a record cut
    /// off at the end of a truncated file).
    pub fn parse_line<'a>(
        &self,
        line: &'a str,
        columns: &[Option<usize>],
        slots: &mut [Option<Val<'a>>],
    ) -> bool {
        let mut n = 0;
        for (i, raw) in line.split('\t').enumerate() {
            n = i + 1;
            if let Some(Some(slot)) = columns.get(i) {
                slots[*slot] = self.typed(i, raw);
            }
        }
        n >= self.fields.len()
    }

    /// The whole record as JSON, the way Zeek's JSON writer would print it.
    pub fn to_json(&self, line: &str) -> Json {
        let mut map = serde_json::Map::new();
        for (i, raw) in line.split('\t').enumerate() {
            if let (Some(name), Some(val)) = (self.fields.get(i), self.typed(i, raw)) {
                map.insert(name.clone(), val_to_json(val));
            }
        }
        Json::Object(map)
    }

    fn typed<'a>(&self, column: usize, raw: &'a str) -> Option<Val<'a>> {
        if raw == self.unset_field {
            return None;
        }
        let ty = self.types.get(column).map_or("string", String::as_str);
        let text = unescape_zeek(raw);
        Some(match ty {
            "time" | "interval" | "double" | "count" | "int" | "port" => {
                match text.parse::<f64>() {
                    Ok(n) => Val::Num(n),
                    Err(_) => Val::Str(text),
                }
            }
            "bool" => Val::Bool(raw == "T"),
            t if t.starts_with("set[") || t.starts_with("vector[") || t.starts_with("table[") => {
                let items: Vec<Json> = if raw == self.empty_field {
                    Vec::new()
                } else {
                    raw.split(self.set_separator.as_str())
                        .map(|s| Json::String(unescape_zeek(s).into_owned()))
                        .collect()
                };
                Val::Json(Json::Array(items))
            }
            _ if raw == self.empty_field => Val::Str(Cow::Borrowed("")),
            _ => Val::Str(text),
        })
    }
}

/// Turns a value back into JSON (for `_source`).
pub fn val_to_json(val: Val<'_>) -> Json {
    match val {
        Val::Null => Json::Null,
        Val::Bool(b) => Json::Bool(b),
        Val::Num(n) => super::value::number_json(n),
        Val::Str(s) => Json::String(s.into_owned()),
        Val::Json(j) => j,
    }
}

/// Decodes Zeek's `\xNN` escapes.
fn unescape_zeek(raw: &str) -> Cow<'_, str> {
    if !raw.contains("\\x") {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], bytes.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keeps_only_planned_fields_and_borrows_strings() {
        let line = r#"{"timestamp":"2018-03-24T14:37:19.037299-0600","flow_id":928532049924531,"event_type":"alert","src_ip":"0.0.0.0","src_port":26078,"dest_ip":"10.47.8.150","dest_port":22,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2001219,"rev":20,"signature":"ET SCAN Potential SSH Scan","category":"Attempted Information Leak","severity":2},"flow":{"pkts_toserver":1}}"#;
        let p = paths(&[
            "src_ip",
            "alert.signature_id",
            "alert.severity",
            "nope",
            "flow",
        ]);
        let tree = PathTree::new(&p);
        let mut slots = vec![None; p.len()];
        parse_json_line(line, &tree, &mut slots).unwrap();
        assert!(matches!(
            &slots[0],
            Some(Val::Str(Cow::Borrowed("0.0.0.0")))
        ));
        assert_eq!(slots[1], Some(Val::Num(2_001_219.0)));
        assert_eq!(slots[2], Some(Val::Num(2.0)));
        assert_eq!(slots[3], None);
        assert!(matches!(slots[4], Some(Val::Json(_))));
        assert!(parse_json_line("{\"src_ip\":", &tree, &mut slots).is_err());
    }

    #[test]
    fn a_captured_object_still_serves_paths_inside_it() {
        let p = paths(&["alert", "alert.severity"]);
        let tree = PathTree::new(&p);
        let mut slots = vec![None; 2];
        parse_json_line(r#"{"alert":{"severity":1}}"#, &tree, &mut slots).unwrap();
        assert_eq!(slots[1], Some(Val::Num(1.0)));
    }

    #[test]
    fn zeek_literal_dotted_keys_and_escapes() {
        let p = paths(&["id.orig_h", "msg"]);
        let tree = PathTree::new(&p);
        let mut slots = vec![None; 2];
        parse_json_line(
            r#"{"id.orig_h":"10.0.0.1","msg":"a\"b"}"#,
            &tree,
            &mut slots,
        )
        .unwrap();
        assert_eq!(slots[0], Some(Val::Str("10.0.0.1".into())));
        assert_eq!(slots[1], Some(Val::Str("a\"b".into())));
    }

    #[test]
    fn zeek_tsv_lines_are_typed_by_the_header() {
        let mut h = ZeekHeader::default();
        for line in [
            "#separator \\x09",
            "#set_separator\t,",
            "#empty_field\t(empty)",
            "#unset_field\t-",
            "#fields\tts\tid.orig_h\tid.resp_p\tconn_state\tlocal_orig\ttunnel_parents",
            "#types\ttime\taddr\tport\tstring\tbool\tset[string]",
        ] {
            assert!(h.read_line(line));
        }
        let p = paths(&[
            "ts",
            "id.resp_p",
            "conn_state",
            "local_orig",
            "tunnel_parents",
        ]);
        let cols = h.column_slots(&p);
        let mut slots = vec![None; p.len()];
        assert!(h.parse_line(
            "1521911721.255387\t10.1.1.1\t3389\tRSTR\tT\t(empty)",
            &cols,
            &mut slots
        ));
        assert_eq!(slots[0], Some(Val::Num(1_521_911_721.255_387)));
        assert_eq!(slots[1], Some(Val::Num(3389.0)));
        assert_eq!(slots[3], Some(Val::Bool(true)));
        assert_eq!(slots[4], Some(Val::Json(Json::Array(vec![]))));
        assert!(!h.parse_line("1521911721.255387\t10.1.1.1\t33", &cols, &mut slots));
        let json = h.to_json("1521911721.255387\t10.1.1.1\t3389\t-\tF\ta,b");
        assert_eq!(json["id.resp_p"], 3389);
        assert!(json.get("conn_state").is_none());
        assert_eq!(json["tunnel_parents"], serde_json::json!(["a", "b"]));
        assert_eq!(unescape_zeek("a\\x09b"), "a\tb");
    }
}
