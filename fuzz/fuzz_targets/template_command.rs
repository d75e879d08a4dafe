//! Mustache parse and render, then the Run Script checks: no panics, and a shell-quoted word
//! reads back, by a reference POSIX shell word reader, as the word itself.
//!
//! Input: the first line is a JSON value (the data the template sees), the rest the template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;
use tcpreset::playbook::act::command::{check_script, default_allow_list, shell_quote};
use tcpreset::playbook::act::template::{Escape, Piece, Template};

/// Reads one POSIX shell word (single quotes, backslash escapes, plain characters); `None` if the
/// text is not exactly one word or uses anything else the shell would interpret.
fn shell_unquote(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '\\' => out.push(chars.next()?),
            c if c.is_ascii_alphanumeric() || "._:/@%+=,-".contains(c) => out.push(c),
            _ => return None,
        }
    }
    any.then_some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (json, source) = text.split_once('\n').unwrap_or(("null", text));
    let quoted = shell_quote(source);
    assert_eq!(shell_unquote(&quoted).as_deref(), Some(source), "{quoted}");
    let value: Json = serde_json::from_str(json).unwrap_or(Json::Null);
    let Ok(template) = Template::parse(source) else {
        return;
    };
    let stack = [&value];
    let _ = template.render_string(&stack, Escape::Html);
    let _ = template.render_string(&stack, Escape::Json);
    let pieces = template.render(&stack);
    for piece in &pieces {
        if let Piece::Value { text, .. } = piece {
            let quoted = shell_quote(text);
            assert_eq!(
                shell_unquote(&quoted).as_deref(),
                Some(text.as_str()),
                "{quoted}"
            );
        }
    }
    for line in check_script(&pieces, &default_allow_list()) {
        match line {
            Ok(checked) => assert_eq!(checked.program, "tcpreset"),
            Err(refusal) => assert!(!refusal.report().is_empty()),
        }
    }
});
