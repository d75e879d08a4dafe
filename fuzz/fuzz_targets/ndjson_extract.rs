//! The NDJSON extractor against `serde_json`: whatever `parse_json_bytes` (fast path, then the
//! fallback) reads, `serde_json` alone reads with the same slots, and the same lines fail; a line
//! that is not UTF-8 is refused as such. `parse_json_record` on a block agrees with both.
//!
//! Input: the first line lists the paths (comma separated, up to 8), the rest is the record.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpreset::playbook::record::json::fallback::parse_json_line_serde;
use tcpreset::playbook::record::json::paths::PathTree;
use tcpreset::playbook::record::json::{parse_json_bytes, parse_json_record, LineError};
use tcpreset::playbook::record::value::{same_slots as same, Val};

type Slots<'a> = Vec<Option<Val<'a>>>;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(spec) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let paths: Vec<String> = spec
        .split(',')
        // At most 8 dots: a path's splits grow as 2^dots (fuzz/regressions/README.md).
        .filter(|p| !p.is_empty() && p.matches('.').count() <= 8)
        .take(8)
        .map(str::to_string)
        .collect();
    let tree = PathTree::new(&paths);
    let line = data.get(split + 1..).unwrap_or_default();
    let mut slots: Slots = vec![None; paths.len()];
    let got = parse_json_bytes(line, &tree, &mut slots);
    let Ok(text) = std::str::from_utf8(line) else {
        assert!(matches!(got, Err(LineError::NotUtf8)), "{line:?}: {got:?}");
        return;
    };
    let mut reference: Slots = vec![None; paths.len()];
    let expected = parse_json_line_serde(text, &tree, &mut reference);
    match (&got, &expected) {
        (Ok(()), Ok(())) => assert!(
            same(&slots, &reference),
            "{text:?}\n{slots:?}\n{reference:?}"
        ),
        (Err(LineError::Json(a)), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
        _ => panic!("{text:?}: got {got:?}, serde_json {expected:?}"),
    }
    // The same line at the start of a block: the fast path reads it as serde_json does, or
    // leaves it to the caller.
    let block = [line, b"\n{}\n"].concat();
    let mut fast: Slots = vec![None; paths.len()];
    if let Some(end) = parse_json_record(&block, &tree, &mut fast) {
        let line_end = block
            .iter()
            .position(|b| *b == b'\n')
            .expect("the block has one");
        assert_eq!(end, line_end, "{block:?}");
        let first = std::str::from_utf8(&block[..end]).expect("vouched lines are UTF-8");
        let mut want: Slots = vec![None; paths.len()];
        assert!(
            parse_json_line_serde(first, &tree, &mut want).is_ok(),
            "fast path vouched for {first:?}"
        );
        assert!(same(&fast, &want), "{first:?}\n{fast:?}\n{want:?}");
    }
});
