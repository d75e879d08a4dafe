//! JSON paths: a playbook's native paths as a tree of keys for the readers that walk a record
//! once, and looking a path up in a parsed record. A path such as `id.orig_h` or
//! `alert.severity` matches a literal dotted key first, then nested objects, at every split.

use serde_json::Value as Json;

/// The native paths of a [`FieldPlan`](crate::playbook::record::format::FieldPlan) as a tree of JSON keys.
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    pub(super) children: Vec<(Box<str>, PathTree)>,
    pub(super) slot: Option<usize>,
    /// Paths captured whole at this node whose slots are then read from inside it.
    pub(super) inner: Vec<(String, usize)>,
    /// Bit `min(len, 63)` is set for the length of each child's key: most keys of a record are
    /// not wanted, and most of those are told apart by their length alone.
    pub(super) lens: u64,
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

    pub(super) fn find(&self, key: &str) -> Option<&PathTree> {
        // Length and first byte first: most keys of a record are not wanted.
        let (len, first) = (key.len(), key.as_bytes().first());
        self.children
            .iter()
            .find(|(k, _)| k.len() == len && k.as_bytes().first() == first && &**k == key)
            .map(|(_, c)| c)
    }

    /// [`PathTree::find`] for a key given as its raw bytes (a JSON string without escapes).
    #[inline]
    pub(super) fn find_bytes(&self, key: &[u8]) -> Option<&PathTree> {
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

/// Reads path `path` of a parsed JSON record: a literal key first (Zeek's `id.orig_h`), then
/// nested objects (`alert.severity`), trying every split of the dots.
pub fn lookup_json<'j>(record: &'j Json, path: &str) -> Option<&'j Json> {
    let map = record.as_object()?;
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    path.match_indices('.')
        .find_map(|(i, _)| lookup_json(map.get(&path[..i])?, &path[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lookup_tries_literal_dotted_keys_then_nesting() {
        let rec: Json =
            serde_json::json!({"id.orig_h": "10.0.0.1", "alert": {"severity": 1}, "a": {"b.c": 2}});
        assert_eq!(
            lookup_json(&rec, "id.orig_h"),
            Some(&Json::from("10.0.0.1"))
        );
        assert_eq!(lookup_json(&rec, "alert.severity"), Some(&Json::from(1)));
        assert_eq!(lookup_json(&rec, "a.b.c"), Some(&Json::from(2)));
        assert_eq!(lookup_json(&rec, "alert.nope"), None);
    }
}
