//! Zeek TSV logs: the `#` header (columns, types, separators, unset markers), data lines typed
//! by it, and batches of lines. A header may come again later in a file (logs written one after
//! another): the reading thread follows it, so each batch starts with the header in effect there.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value as Json;

use super::batch::{lines, whole_lines, BatchParser, RecordSink, Splitter};
use super::format::FieldPlan;
use super::value::{val_to_json, Val};

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
    /// The separators and markers Zeek writes unless the header says otherwise, and no columns.
    pub fn zeek_defaults() -> ZeekHeader {
        ZeekHeader {
            set_separator: ",".into(),
            empty_field: "(empty)".into(),
            unset_field: "-".into(),
            ..ZeekHeader::default()
        }
    }

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

/// Cuts Zeek TSV after its last whole line, following the header lines it cuts past.
#[derive(Debug)]
pub struct ZeekSplitter {
    header: Arc<ZeekHeader>,
}

impl Default for ZeekSplitter {
    fn default() -> Self {
        ZeekSplitter {
            header: Arc::new(ZeekHeader::zeek_defaults()),
        }
    }
}

impl Splitter for ZeekSplitter {
    /// The header in effect at the start of the batch.
    type Cut = Arc<ZeekHeader>;

    fn split(&mut self, data: &[u8], end: bool) -> Option<(usize, Arc<ZeekHeader>)> {
        let n = whole_lines(data, end)?;
        let at_start = Arc::clone(&self.header);
        let starts = data.first().filter(|b| **b == b'#').map(|_| 0);
        let later = memchr::memmem::find_iter(&data[..n], b"\n#").map(|i| i + 1);
        for start in starts.into_iter().chain(later) {
            let rest = &data[start..n];
            let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
            if let Ok(line) = std::str::from_utf8(line) {
                Arc::make_mut(&mut self.header).read_line(line.trim_end_matches('\r'));
            }
        }
        Some((n, at_start))
    }
}

/// Reads Zeek TSV batches into the fields of one plan.
pub struct ZeekParser {
    pub plan: FieldPlan,
}

impl BatchParser for ZeekParser {
    type Cut = Arc<ZeekHeader>;

    fn parse(&self, batch: &[u8], header: &Arc<ZeekHeader>, sink: &mut impl RecordSink) -> u64 {
        let mut header = Cow::Borrowed(&**header);
        let mut columns = header.column_slots(&self.plan.paths);
        let mut slots = vec![None; self.plan.paths.len()];
        let mut breaks = 0;
        for (n, raw) in lines(batch) {
            breaks = n;
            let Ok(line) = std::str::from_utf8(raw) else {
                sink.malformed(n, || "not UTF-8".into());
                continue;
            };
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            if line.starts_with('#') {
                header.to_mut().read_line(line);
                columns = header.column_slots(&self.plan.paths);
                continue;
            }
            slots.fill(None);
            if header.fields.is_empty() {
                sink.malformed(n, || "data before the #fields header".into());
            } else if header.parse_line(line, &columns, &mut slots) {
                sink.record(&self.plan, &slots, n, || header.to_json(line));
            } else {
                sink.malformed(n, || {
                    "record has fewer columns than #fields (cut off?)".into()
                });
            }
        }
        breaks + u64::from(batch.last() == Some(&b'\n'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
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
