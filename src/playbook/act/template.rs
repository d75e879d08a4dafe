//! Mustache templates (spec-compliant: sections over lists, inverted sections, dotted names,
//! context-stack lookup, standalone lines, comments, set delimiters). Rendering keeps literal text
//! and substituted values apart, so each caller escapes values for its own output (HTML, JSON, or
//! a command line whose values are checked word by word).

use crate::playbook::record::json::paths::lookup_json;
use serde_json::Value as Json;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Var {
        name: String,
        raw: bool,
    },
    Section {
        name: String,
        inverted: bool,
        children: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("template line {line}: `{{{{#{name}}}}}` is never closed; add `{{{{/{name}}}}}`")]
    Unclosed { name: String, line: usize },
    #[error("template line {line}: `{{{{/{name}}}}}` closes a section that is not open")]
    NotOpen { name: String, line: usize },
    #[error("template line {line}: `{{{{/{close}}}}}` closes `{{{{#{open}}}}}`; close the inner section first")]
    Mismatch {
        open: String,
        close: String,
        line: usize,
    },
    #[error("template line {line}: a tag is opened but never closed; add the closing delimiter")]
    UnclosedTag { line: usize },
    #[error("template line {line}: partials (`{{{{>...}}}}`) are not supported; inline the text")]
    Partial { line: usize },
    #[error("template line {line}: bad set-delimiter tag; write it like `{{{{=<% %>=}}}}`")]
    Delimiters { line: usize },
    #[error("template line {line}: empty tag name")]
    EmptyName { line: usize },
}

/// A tag of a parsed template, as checks that walk it without data see it (text left out).
#[derive(Debug, Clone, PartialEq)]
pub enum Tag<'t> {
    Var(&'t str),
    Section {
        name: &'t str,
        inverted: bool,
        children: Vec<Tag<'t>>,
    },
}

fn tags(nodes: &[Node]) -> Vec<Tag<'_>> {
    nodes
        .iter()
        .filter_map(|node| match node {
            Node::Text(_) => None,
            Node::Var { name, .. } => Some(Tag::Var(name)),
            Node::Section {
                name,
                inverted,
                children,
            } => Some(Tag::Section {
                name,
                inverted: *inverted,
                children: tags(children),
            }),
        })
        .collect()
}

/// A piece of rendered output: template text, or a value substituted from the data.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Value {
        text: String,
        raw: bool,
        name: String,
        /// Where the name was looked up when it has no value (it renders empty): the innermost
        /// section, or `None` at the top, where the action's own context is.
        missing: Option<Missing>,
    },
}

/// A variable that resolved to nothing, and the section it was looked up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub section: Option<String>,
}

/// How substituted values are escaped when the output is a plain string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Mustache's default: `& < > "` become entities (triple braces stay raw).
    Html,
    /// For values inside JSON strings: quotes, backslashes and control characters are escaped,
    /// even in triple braces, so a value can never end its string.
    Json,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Parser {
            src: source,
            pos: 0,
            open: "{{".into(),
            close: "}}".into(),
            last_tag_end: 0,
        }
        .parse()
    }

    /// The variables and sections of the template, in order.
    pub fn tags(&self) -> Vec<Tag<'_>> {
        tags(&self.nodes)
    }

    /// Renders with `stack` as the context stack (outermost first).
    pub fn render(&self, stack: &[&Json]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut stack = stack.to_vec();
        render_nodes(&self.nodes, &mut stack, &mut out, &mut Vec::new());
        out
    }

    /// Renders to a string, escaping values as `escape` says.
    pub fn render_string(&self, stack: &[&Json], escape: Escape) -> String {
        let mut s = String::new();
        for piece in self.render(stack) {
            match piece {
                Piece::Text(t) => s.push_str(&t),
                Piece::Value { text, raw, .. } => match escape {
                    Escape::Html if raw => s.push_str(&text),
                    Escape::Html => s.push_str(&html_escape(&text)),
                    Escape::Json => {
                        let quoted = Json::String(text).to_string();
                        s.push_str(&quoted[1..quoted.len() - 1]);
                    }
                },
            }
        }
        s
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    open: String,
    close: String,
    last_tag_end: usize,
}

struct Open {
    name: String,
    inverted: bool,
    line: usize,
    nodes: Vec<Node>,
}

impl Parser<'_> {
    fn line_at(&self, pos: usize) -> usize {
        self.src[..pos].matches('\n').count() + 1
    }

    fn parse(mut self) -> Result<Template, TemplateError> {
        let mut stack: Vec<Open> = vec![Open {
            name: String::new(),
            inverted: false,
            line: 0,
            nodes: Vec::new(),
        }];
        let mut text = String::new();
        while let Some(found) = self.src[self.pos..].find(self.open.as_str()) {
            let start = self.pos + found;
            let line = self.line_at(start);
            text.push_str(&self.src[self.pos..start]);
            let after_open = start + self.open.len();
            let (sigil, body_start) = match self.src[after_open..].chars().next() {
                Some(c @ ('#' | '^' | '/' | '!' | '>' | '&' | '=' | '{')) => {
                    (Some(c), after_open + 1)
                }
                _ => (None, after_open),
            };
            let closer = match sigil {
                Some('{') => format!("}}{}", self.close),
                Some('=') => format!("={}", self.close),
                _ => self.close.clone(),
            };
            let body_len = self.src[body_start..]
                .find(closer.as_str())
                .ok_or(TemplateError::UnclosedTag { line })?;
            let body = self.src[body_start..body_start + body_len]
                .trim()
                .to_string();
            let end = body_start + body_len + closer.len();
            let standalone = if matches!(sigil, Some('#' | '^' | '/' | '!' | '>' | '=')) {
                self.standalone(start, end, &text)
            } else {
                None
            };
            let mut next = end;
            if let Some((line_start_in_text, after_line)) = standalone {
                text.truncate(line_start_in_text);
                next = after_line;
            }
            let top = stack.last_mut().expect("root is never popped");
            if !text.is_empty() {
                top.nodes.push(Node::Text(std::mem::take(&mut text)));
            }
            let need_name = || {
                if body.is_empty() {
                    Err(TemplateError::EmptyName { line })
                } else {
                    Ok(body.clone())
                }
            };
            match sigil {
                Some('!') => {}
                Some('>') => return Err(TemplateError::Partial { line }),
                Some('=') => {
                    let mut parts = body.split_whitespace();
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(o), Some(c), None) if !o.contains('=') && !c.contains('=') => {
                            self.open = o.to_string();
                            self.close = c.to_string();
                        }
                        _ => return Err(TemplateError::Delimiters { line }),
                    }
                }
                Some('#' | '^') => stack.push(Open {
                    name: need_name()?,
                    inverted: sigil == Some('^'),
                    line,
                    nodes: Vec::new(),
                }),
                Some('/') => {
                    let name = need_name()?;
                    if stack.len() == 1 {
                        return Err(TemplateError::NotOpen { name, line });
                    }
                    let open = stack.pop().expect("checked length");
                    if open.name != name {
                        return Err(TemplateError::Mismatch {
                            open: open.name,
                            close: name,
                            line,
                        });
                    }
                    let section = Node::Section {
                        name,
                        inverted: open.inverted,
                        children: open.nodes,
                    };
                    stack.last_mut().expect("root stays").nodes.push(section);
                }
                Some('&' | '{') => top.nodes.push(Node::Var {
                    name: need_name()?,
                    raw: true,
                }),
                _ => top.nodes.push(Node::Var {
                    name: need_name()?,
                    raw: false,
                }),
            }
            self.last_tag_end = end;
            self.pos = next;
        }
        text.push_str(&self.src[self.pos..]);
        if stack.len() > 1 {
            let open = stack.pop().expect("checked length");
            return Err(TemplateError::Unclosed {
                name: open.name,
                line: open.line,
            });
        }
        let mut root = stack.pop().expect("root");
        if !text.is_empty() {
            root.nodes.push(Node::Text(text));
        }
        Ok(Template { nodes: root.nodes })
    }

    /// If the tag at `start..end` is alone on its line (only blanks around it), returns where the
    /// line starts within the pending `text` and where the next line starts in the source.
    fn standalone(&self, start: usize, end: usize, text: &str) -> Option<(usize, usize)> {
        let line_start = self.src[..start].rfind('\n').map_or(0, |i| i + 1);
        if self.last_tag_end > line_start {
            return None;
        }
        let before = &self.src[line_start..start];
        if !before.chars().all(|c| c == ' ' || c == '\t') {
            return None;
        }
        let rest = &self.src[end..];
        let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let after = rest[..line_end].trim_end_matches(['\n', '\r']);
        if !after.chars().all(|c| c == ' ' || c == '\t') {
            return None;
        }
        Some((text.len() - before.len(), end + line_end))
    }
}

/// Renders `nodes`; `sections` names the sections entered, innermost last.
fn render_nodes<'n>(
    nodes: &'n [Node],
    stack: &mut Vec<&Json>,
    out: &mut Vec<Piece>,
    sections: &mut Vec<&'n str>,
) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push(Piece::Text(t.clone())),
            Node::Var { name, raw } => {
                let text = lookup(name, stack).and_then(interpolate);
                let missing = text.is_none().then(|| Missing {
                    section: sections.last().map(|s| s.to_string()),
                });
                out.push(Piece::Value {
                    text: text.unwrap_or_default(),
                    raw: *raw,
                    name: name.clone(),
                    missing,
                });
            }
            Node::Section {
                name,
                inverted,
                children,
            } => {
                let value = lookup(name, stack);
                let truthy = value.is_some_and(is_truthy);
                sections.push(name);
                match (inverted, value) {
                    (true, _) => {
                        if !truthy {
                            render_nodes(children, stack, out, sections);
                        }
                    }
                    (false, Some(Json::Array(items))) => {
                        for item in items {
                            stack.push(item);
                            render_nodes(children, stack, out, sections);
                            stack.pop();
                        }
                    }
                    (false, Some(v)) if truthy => {
                        stack.push(v);
                        render_nodes(children, stack, out, sections);
                        stack.pop();
                    }
                    (false, _) => {}
                }
                sections.pop();
            }
        }
    }
}

fn is_truthy(v: &Json) -> bool {
    match v {
        Json::Null | Json::Bool(false) => false,
        Json::Array(a) => !a.is_empty(),
        _ => true,
    }
}

fn interpolate(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Finds `name` on the context stack: `.` is the top; otherwise the first frame that has the
/// first part of a dotted name (or the whole dotted name as one key, as Zeek's `id.orig_h`), then
/// the rest of the name inside it.
pub fn lookup<'d>(name: &str, stack: &[&'d Json]) -> Option<&'d Json> {
    if name == "." {
        return stack.last().copied();
    }
    let first = name.split('.').next().unwrap_or(name);
    for frame in stack.iter().rev() {
        let Json::Object(map) = frame else { continue };
        if let Some(v) = map.get(name) {
            return Some(v);
        }
        if let Some(v) = map.get(first) {
            // The rest as a record path: literal dotted keys (Zeek's `id.orig_h`), then nesting.
            return match name.split_once('.') {
                Some((_, rest)) => lookup_json(v, rest),
                None => Some(v),
            };
        }
    }
    None
}

#[cfg(test)]
mod tests;
