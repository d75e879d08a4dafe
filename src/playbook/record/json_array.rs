//! JSON array logs (`[{...}, {...}]`, often pretty-printed over many lines) in batches of whole
//! elements. The reading thread only finds where each element starts and ends (strings and
//! nesting, nothing parsed); workers read the elements as NDJSON records are read.

use std::ops::Range;

use serde_json::Value as Json;

use super::batch::{line_breaks, BatchParser, RecordSink, Splitter};
use super::format::{detect_json_format, FieldPlan, Format};
use super::json::parse_json_bytes;
use super::json::paths::PathTree;

/// What the reading thread found in a batch, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// One element: its bytes in the batch.
    Element(Range<usize>),
    /// Something wrong with the array itself, at this byte of the batch.
    Broken { at: usize, why: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Before,
    /// Inside the array, at the start of an element.
    Inside,
    /// After the closing `]`.
    After,
    /// Text after the closing `]` was reported; the rest is ignored.
    Ignoring,
}

/// Cuts a JSON array after its last whole element.
#[derive(Debug)]
pub struct ArraySplitter {
    state: State,
}

impl Default for ArraySplitter {
    fn default() -> Self {
        ArraySplitter {
            state: State::Before,
        }
    }
}

/// Where the value starting at `from` ends: the index of the `,` or `]` after it at the top
/// level of the array, or `None` if `data` ends first.
fn element_end(data: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < data.len() {
        match data[i] {
            b'"' => {
                // Past the closing quote, skipping escaped characters.
                i += 1;
                loop {
                    i += memchr::memchr2(b'"', b'\\', data.get(i..)?)?;
                    if data[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b']' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn skip_ws(data: &[u8], mut i: usize) -> usize {
    while data.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

fn trimmed(data: &[u8], range: Range<usize>) -> Range<usize> {
    let end = range.start + data[range.clone()].trim_ascii_end().len();
    range.start..end
}

impl Splitter for ArraySplitter {
    type Cut = Vec<Piece>;
    const LINES: bool = false;

    fn split(&mut self, data: &[u8], end: bool) -> Option<(usize, Vec<Piece>)> {
        let mut state = self.state;
        let mut pieces = Vec::new();
        let mut i = 0;
        // The batch may end after `cut` (a separator or the end of the array).
        let mut cut = None;
        loop {
            i = skip_ws(data, i);
            match state {
                State::Before => match data.get(i) {
                    Some(b'[') => {
                        state = State::Inside;
                        i += 1;
                        let next = skip_ws(data, i);
                        if data.get(next) == Some(&b']') {
                            state = State::After;
                            i = next + 1;
                            cut = Some((i, pieces.len()));
                        }
                    }
                    Some(_) => {
                        pieces.push(Piece::Broken {
                            at: i,
                            why: "not a JSON array: expected `[`",
                        });
                        state = State::Ignoring;
                    }
                    None => break,
                },
                State::Inside => match element_end(data, i) {
                    Some(sep) => {
                        pieces.push(Piece::Element(trimmed(data, i..sep)));
                        i = sep + 1;
                        if data[sep] == b']' {
                            state = State::After;
                        }
                        cut = Some((i, pieces.len()));
                    }
                    None if end => {
                        if i < data.len() {
                            pieces.push(Piece::Element(trimmed(data, i..data.len())));
                        }
                        pieces.push(Piece::Broken {
                            at: data.len(),
                            why: "the JSON array is not closed with `]` (cut off?)",
                        });
                        break;
                    }
                    None => break,
                },
                State::After if i < data.len() => {
                    pieces.push(Piece::Broken {
                        at: i,
                        why: "text after the end of the JSON array",
                    });
                    state = State::Ignoring;
                }
                State::After | State::Ignoring => break,
            }
        }
        // After the closing `]` the rest was looked at whole; otherwise the batch ends after the
        // last separator, and the rest is read again from the start of an element.
        let (n, kept) = match (end, state) {
            (true, _) | (_, State::After | State::Ignoring) => (data.len(), pieces.len()),
            _ => {
                let cut = cut?;
                state = State::Inside;
                cut
            }
        };
        pieces.truncate(kept);
        self.state = state;
        Some((n, pieces))
    }
}

/// The format of a JSON array whose first batch holds `pieces`: from its first element.
pub fn detect_format(batch: &[u8], pieces: &[Piece]) -> Format {
    pieces
        .iter()
        .find_map(|p| match p {
            Piece::Element(range) => serde_json::from_slice::<Json>(&batch[range.clone()]).ok(),
            Piece::Broken { .. } => None,
        })
        .map_or(Format::Ndjson, |r| detect_json_format(&r))
}

/// Reads the elements of JSON array batches into the fields of one plan.
pub struct ArrayParser {
    plan: FieldPlan,
    tree: PathTree,
}

impl ArrayParser {
    pub fn new(plan: FieldPlan) -> ArrayParser {
        ArrayParser {
            tree: PathTree::new(&plan.paths),
            plan,
        }
    }
}

impl BatchParser for ArrayParser {
    type Cut = Vec<Piece>;

    fn parse(&self, batch: &[u8], pieces: &Vec<Piece>, sink: &mut impl RecordSink) -> u64 {
        let mut slots = vec![None; self.plan.paths.len()];
        // Line breaks before `counted`, so that each piece's line costs only the bytes since.
        let (mut counted, mut line) = (0, 0);
        let mut line_of = |at: usize| {
            line += line_breaks(&batch[counted..at]);
            counted = at;
            line
        };
        for (ordinal, piece) in (0..).zip(pieces) {
            match piece {
                Piece::Element(range) => {
                    let raw = &batch[range.clone()];
                    slots.fill(None);
                    match parse_json_bytes(raw, &self.tree, &mut slots) {
                        Ok(()) => sink.record(&self.plan, &slots, ordinal, || {
                            serde_json::from_slice(raw).unwrap_or(Json::Null)
                        }),
                        Err(e) => sink.malformed(line_of(range.start), || e.to_string()),
                    }
                }
                Piece::Broken { at, why } => sink.malformed(line_of(*at), || (*why).into()),
            }
        }
        line_of(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(text: &[u8], block: usize) -> Vec<(String, Vec<Piece>)> {
        let mut splitter = ArraySplitter::default();
        let mut out = Vec::new();
        let mut start = 0;
        let mut len = block.min(text.len());
        loop {
            let end = start + len >= text.len();
            let data = &text[start..(start + len).min(text.len())];
            match splitter.split(data, end) {
                Some((n, pieces)) => {
                    out.push((String::from_utf8_lossy(&data[..n]).into_owned(), pieces));
                    start += n;
                    len = block;
                    if end {
                        return out;
                    }
                }
                None => len += block,
            }
        }
    }

    fn elements(batches: &[(String, Vec<Piece>)]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|(text, pieces)| {
                pieces.iter().map(move |p| match p {
                    Piece::Element(r) => text[r.clone()].to_string(),
                    Piece::Broken { why, .. } => format!("broken: {why}"),
                })
            })
            .collect()
    }

    #[test]
    fn elements_are_found_whatever_the_batch_size() {
        let text = br#" [ {"a": "x,]}\"", "b": [1, {"c": 2}]},
  {"a": 2} , 3,"s]" ,[4]
] "#;
        let expected = [
            r#"{"a": "x,]}\"", "b": [1, {"c": 2}]}"#,
            r#"{"a": 2}"#,
            "3",
            r#""s]""#,
            "[4]",
        ];
        for block in [1, 2, 3, 7, 16, 1000] {
            let batches = split_all(text, block);
            assert_eq!(elements(&batches), expected, "block {block}");
            let joined: String = batches.iter().map(|(t, _)| t.as_str()).collect();
            assert_eq!(joined.as_bytes(), text, "batches cover the input");
        }
    }

    #[test]
    fn an_empty_array_has_no_elements_and_problems_are_named() {
        assert!(elements(&split_all(b"[ ]\n", 2)).is_empty());
        assert_eq!(
            elements(&split_all(br#"[{"a": 1}, {"a": "#, 4)),
            [
                r#"{"a": 1}"#,
                r#"{"a":"#,
                "broken: the JSON array is not closed with `]` (cut off?)"
            ]
        );
        assert_eq!(
            elements(&split_all(b"[1]\n[2]", 3)),
            ["1", "broken: text after the end of the JSON array"]
        );
        assert_eq!(elements(&split_all(b"[1,]", 1)), ["1", ""]);
    }
}
