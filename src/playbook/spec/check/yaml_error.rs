//! A YAML or model error of a playbook in plain words, at the line that needs the fix: the
//! parser's messages name Rust types (`invalid u64`) and its own options, and report a missing
//! top-level key at the last key of the file.

use super::Problem;

/// The keys a playbook must have at its top level, with an example of each.
const REQUIRED: [(&str, &str); 3] = [
    ("name", "name: Failed logins"),
    ("schedule", "schedule: {interval_minutes: 15}"),
    ("source", "source: {paths: [/var/log/suricata/eve.json]}"),
];

/// The problem `error` describes in `text`.
pub(super) fn problem(error: &serde_saphyr::Error, text: &str) -> Problem {
    let (line, column) = error.location().map_or((0, 0), |l| (l.line(), l.column()));
    let full = error.to_string();
    let first = full.lines().next().unwrap_or("invalid YAML");
    // The parser's own `error: line L column C: ` prefix: the file and line are printed anyway.
    let said = first
        .strip_prefix("error: ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(at, _)| at.starts_with("line "))
        .map_or(first, |(_, message)| message);
    let key = key_before(text, line, column);
    let named = |what: &str| match &key {
        Some(k) => format!("`{k}` must be {what}"),
        None => format!("this value must be {what}"),
    };
    let message = if said.starts_with("invalid u") {
        named("a whole number of 0 or more, such as 10")
    } else if said.starts_with("invalid i") {
        named("a whole number, such as -5 or 10")
    } else if said.starts_with("invalid f") {
        named("a number, such as 2.5")
    } else if let Some(field) = said
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        if let Some((_, example)) = REQUIRED.iter().find(|(k, _)| *k == field) {
            return Problem {
                line: 1,
                message: format!(
                    "the playbook has no `{field}`; add one at the top level, such as `{example}`"
                ),
            };
        }
        format!("`{field}` is missing here; add it")
    } else if let Some(rest) = said.strip_prefix("duplicate mapping key: ") {
        let name = rest.split(',').next().unwrap_or(rest).trim();
        format!("`{name}` is given twice; keep one")
    } else if said.contains("did not find expected key")
        || said.contains("mapping values are not allowed")
    {
        format!("{said}: check the indentation (the keys of one mapping start in the same column, with spaces, not tabs)")
    } else {
        said.to_string()
    };
    Problem { line, message }
}

/// The key whose value is at `line`, `column` (1-based): the last `key:` before the column on
/// that line, or the key that opens the line.
fn key_before(text: &str, line: u64, column: u64) -> Option<String> {
    let row = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let end = row
        .char_indices()
        .nth(usize::try_from(column).ok()?.saturating_sub(1))
        .map_or(row.len(), |(i, _)| i);
    let before = &row[..end];
    let colon = before.rfind(':')?;
    let start = before[..colon]
        .rfind(['{', ',', ' ', '-'])
        .map_or(0, |i| i + 1);
    let key = before[start..colon].trim();
    (!key.is_empty()).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::parse_playbook;

    fn first(text: &str) -> (u64, String) {
        let p = parse_playbook(text).unwrap_err().remove(0);
        (p.line, p.message)
    }

    #[test]
    fn parser_messages_in_plain_words_at_the_line_to_fix() {
        let (line, m) = first("name: a\nschedule: {interval_minutes: 5}\nsource: {paths: [x]}\ncalculations:\n  - {name: t, type: top, field: srcip, size: ten}\n");
        assert_eq!(
            (line, m.as_str()),
            (5, "`size` must be a whole number of 0 or more, such as 10")
        );
        let (line, m) = first("name: a\nsource: {paths: [x]}\nquery: {field: a, is: b}\n");
        assert_eq!(line, 1);
        assert!(
            m.starts_with("the playbook has no `schedule`; add one at the top level"),
            "{m}"
        );
        let (line, m) = first(
            "name: a\nschedule: {interval_minutes: 5}\nsource:\n  paths: [x]\n   format: ndjson\n",
        );
        assert_eq!(line, 5);
        assert!(m.contains("check the indentation"), "{m}");
        let (_, m) =
            first("name: a\nname: b\nschedule: {interval_minutes: 5}\nsource: {paths: [x]}\n");
        assert_eq!(m, "`name` is given twice; keep one");
        assert!(!m.contains("DuplicateKeyPolicy"));
    }
}
