//! What an index's `_mapping` says of each field: its type and its `keyword` subfield, read once
//! per run, so the translation picks `field.keyword` for text fields (as the documentation asks)
//! and refuses the tests a field's type cannot answer as the sensor would.

use std::collections::HashMap;

use serde_json::Value as Json;

/// The kinds of field type the translation tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    Text,
    Ip,
    Numeric,
    Date,
    Boolean,
    /// No index of the pattern maps the field (no document has it).
    Unmapped,
    Other(String),
}

/// One field of the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldType {
    pub kind: Kind,
    /// The type as the mapping spells it (`long`, `keyword`, ...), for messages.
    pub name: String,
    /// The path of a `keyword` subfield (`src_ip.keyword`), if the mapping has one.
    pub keyword: Option<String>,
}

/// Every field of the indices a pattern matches, by dotted path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    fields: HashMap<String, FieldType>,
}

fn kind(name: &str) -> Kind {
    match name {
        "keyword" | "constant_keyword" | "wildcard" => Kind::Keyword,
        "text" | "match_only_text" => Kind::Text,
        "ip" => Kind::Ip,
        "long" | "integer" | "short" | "byte" | "double" | "float" | "half_float"
        | "scaled_float" | "unsigned_long" => Kind::Numeric,
        "date" | "date_nanos" => Kind::Date,
        "boolean" => Kind::Boolean,
        other => Kind::Other(other.to_string()),
    }
}

impl Mapping {
    /// Reads a `GET /{index}/_mapping` answer (one entry per index; the first index to map a
    /// field decides its type).
    pub fn from_response(response: &Json) -> Mapping {
        let mut mapping = Mapping::default();
        let mut indices: Vec<(&String, &Json)> =
            response.as_object().into_iter().flatten().collect();
        indices.sort_by_key(|(name, _)| name.as_str());
        for (_, index) in indices {
            mapping.walk("", &index["mappings"]["properties"]);
        }
        mapping
    }

    fn walk(&mut self, prefix: &str, properties: &Json) {
        for (name, field) in properties.as_object().into_iter().flatten() {
            let path = format!("{prefix}{name}");
            if field.get("properties").is_some() {
                self.walk(&format!("{path}."), &field["properties"]);
                continue;
            }
            let type_name = field["type"].as_str().unwrap_or("object").to_string();
            let keyword = field["fields"]
                .as_object()
                .into_iter()
                .flatten()
                .find(|(_, sub)| sub["type"] == "keyword")
                .map(|(sub, _)| format!("{path}.{sub}"));
            self.fields.entry(path).or_insert(FieldType {
                kind: kind(&type_name),
                name: type_name,
                keyword,
            });
        }
    }

    /// The type of the field at `path`.
    pub fn field(&self, path: &str) -> FieldType {
        self.fields.get(path).cloned().unwrap_or(FieldType {
            kind: Kind::Unmapped,
            name: "unmapped".into(),
            keyword: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_and_keyword_subfields_are_read_by_path() {
        let m = Mapping::from_response(
            &json!({"zeek-b": {"mappings": {"properties": {"ts": {"type": "long"}}}},
            "zeek-a": {"mappings": {"properties": {
            "ts": {"type": "date", "format": "epoch_second"},
            "id": {"properties": {"orig_h": {"type": "text", "fields": {"raw": {"type": "keyword"}}}, "orig_p": {"type": "long"}}},
            "history": {"type": "keyword"}}}}}),
        );
        assert_eq!(m.field("ts").kind, Kind::Date);
        let orig = m.field("id.orig_h");
        assert_eq!(
            (orig.kind, orig.keyword.as_deref()),
            (Kind::Text, Some("id.orig_h.raw"))
        );
        assert_eq!(m.field("id.orig_p").kind, Kind::Numeric);
        assert_eq!(m.field("engid").kind, Kind::Unmapped);
    }
}
