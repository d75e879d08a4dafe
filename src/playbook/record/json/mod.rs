//! Reading one JSON record into only the fields a playbook uses, strings borrowed from the line:
//! the hand-written extractor (`extract.rs`, with the 64-byte masks of `scan.rs`), the
//! `serde_json` [`fallback`] it defers to, and the [`paths`] both walk.

mod extract;
pub mod fallback;
pub mod paths;
mod scan;

use crate::playbook::record::value::Val;

use fallback::parse_json_line_serde;
use paths::PathTree;

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
    let fast = match extract::extract(line, tree, slots) {
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
    match extract::extract(text, tree, slots) {
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

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
}
