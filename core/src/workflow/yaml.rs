//! A small YAML tree that remembers where every node came from.
//!
//! Built from `saphyr-parser`'s events so that each value keeps its line and
//! column. Input size, nesting depth and alias expansion are capped before
//! anything else reads the tree, so a hostile file cannot exhaust memory.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Largest workflow file accepted, in bytes (GitHub's own limit is 512 KiB).
pub const MAX_INPUT_BYTES: usize = 512 * 1024;
/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes in a document after aliases are expanded ("billion laughs" guard).
pub const MAX_NODES: usize = 200_000;

/// A 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One value of the document and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Yaml,
}

/// A mapping key: always a scalar, kept as the text that was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub pos: Pos,
    pub text: String,
}

/// A YAML value, with scalars resolved by the YAML 1.2 core schema
/// (so `on` is a string, not a boolean as in YAML 1.1).
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// The scalar as the string GitHub would use (`1.10` becomes `1.1`, as there).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Yaml::Null => Some(String::new()),
            Yaml::Bool(b) => Some(b.to_string()),
            Yaml::Int(i) => Some(i.to_string()),
            Yaml::Float(f) => Some(super::expr::Value::Number(*f).to_string()),
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Seq(_) | Yaml::Map(_) => None,
        }
    }

    /// A word for error messages: "a string", "a mapping", ...
    pub fn kind(&self) -> &'static str {
        match self.value {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) | Yaml::Float(_) => "a number",
            Yaml::Str(_) => "a string",
            Yaml::Seq(_) => "a sequence",
            Yaml::Map(_) => "a mapping",
        }
    }

    fn count(&self) -> usize {
        match &self.value {
            Yaml::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Yaml::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + v.count()).sum::<usize>(),
            _ => 1,
        }
    }
}

/// Why the text is not a YAML document we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

fn pos(span: Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

fn error(pos: Pos, message: impl Into<String>) -> YamlError {
    YamlError {
        pos,
        message: message.into(),
    }
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Key, Node)>, Option<Key>),
}

/// Parses the first (and only) document of `text`. An empty file is `Null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(error(
            Pos { line: 1, col: 1 },
            format!(
                "file is {} bytes; workflow files are limited to {MAX_INPUT_BYTES} bytes",
                text.len()
            ),
        ));
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let m = e.marker();
            error(
                Pos {
                    line: m.line(),
                    col: m.col() + 1,
                },
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let at = pos(span);
        let (node, anchor) = match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                if root.is_some() {
                    return Err(error(
                        at,
                        "a workflow file holds one YAML document; remove the extra `---`",
                    ));
                }
                continue;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(error(at, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(at, anchor, Vec::new())
                } else {
                    Frame::Map(at, anchor, Vec::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(p, anchor, items)) => (
                    Node {
                        pos: p,
                        value: Yaml::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map(p, anchor, entries, _)) => (
                    Node {
                        pos: p,
                        value: Yaml::Map(entries),
                    },
                    anchor,
                ),
                None => return Err(error(at, "unbalanced YAML collection")),
            },
            Event::Scalar(text, style, anchor, _) => (
                Node {
                    pos: at,
                    value: resolve(&text, style),
                },
                anchor,
            ),
            Event::Alias(id) => {
                let Some((node, count)) = anchors.get(&id) else {
                    return Err(error(at, "alias refers to an unknown anchor"));
                };
                nodes += count;
                if nodes > MAX_NODES {
                    return Err(error(
                        at,
                        format!("aliases expand to more than {MAX_NODES} nodes"),
                    ));
                }
                (
                    Node {
                        pos: at,
                        value: node.value.clone(),
                    },
                    0,
                )
            }
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(error(
                at,
                format!("document has more than {MAX_NODES} nodes"),
            ));
        }
        if anchor != 0 {
            let count = node.count();
            anchors.insert(anchor, (node.clone(), count));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => {
                    let Some(text) = node.scalar_text() else {
                        return Err(error(node.pos, "mapping keys must be plain strings"));
                    };
                    if entries.iter().any(|(k, _)| k.text == text) {
                        return Err(error(node.pos, format!("duplicate key `{text}`")));
                    }
                    *key = Some(Key {
                        pos: node.pos,
                        text,
                    });
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        pos: Pos { line: 1, col: 1 },
        value: Yaml::Null,
    }))
}

/// Resolves a scalar by the YAML 1.2 core schema; quoted and block scalars are strings.
fn resolve(text: &str, style: ScalarStyle) -> Yaml {
    if style != ScalarStyle::Plain {
        return Yaml::Str(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null,
        "true" | "True" | "TRUE" => return Yaml::Bool(true),
        "false" | "False" | "FALSE" => return Yaml::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Yaml::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Yaml::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Yaml::Float(f64::NAN),
        _ => {}
    }
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let int = if digits(unsigned, 10) {
        text.parse::<i64>().ok()
    } else if let Some(hex) = text.strip_prefix("0x").filter(|h| digits(h, 16)) {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = text.strip_prefix("0o").filter(|o| digits(o, 8)) {
        i64::from_str_radix(oct, 8).ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Yaml::Int(i);
    }
    if let Some(f) = is_float(unsigned)
        .then(|| text.parse::<f64>().ok())
        .flatten()
    {
        return Yaml::Float(f);
    }
    Yaml::Str(text.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's float.
fn is_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = all_digits(int)
        && frac.is_none_or(all_digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exp_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(node: &Node) -> &[(Key, Node)] {
        match &node.value {
            Yaml::Map(m) => m,
            other => panic!("expected a mapping, got {other:?}"),
        }
    }

    #[test]
    fn keeps_positions_and_core_schema_types() {
        let doc =
            parse("on: push\njobs:\n  a:\n    n: 1.10\n    b: yes\n    c: '1'\n").expect("valid");
        let top = map(&doc);
        assert_eq!(top[0].0.text, "on");
        assert_eq!(top[0].1.value, Yaml::Str("push".into()));
        let a = map(&map(&top[1].1)[0].1);
        assert_eq!(a[0].1.value, Yaml::Float(1.1));
        assert_eq!(a[0].1.pos, Pos { line: 4, col: 8 });
        assert_eq!(a[0].1.scalar_text().as_deref(), Some("1.1"));
        assert_eq!(a[1].1.value, Yaml::Str("yes".into()));
        assert_eq!(a[2].1.value, Yaml::Str("1".into()));
    }

    #[test]
    fn rejects_duplicates_depth_and_alias_bombs() {
        let e = parse("a: 1\na: 2\n").expect_err("duplicate");
        assert_eq!(e.pos, Pos { line: 2, col: 1 });
        assert!(parse(&"[".repeat(100)).is_err());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..10 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 0 {
                    "a".to_string()
                } else {
                    format!("b{}", i - 1)
                }
            ));
        }
        let e = parse(&bomb).expect_err("bomb");
        assert!(e.message.contains("aliases expand"), "{e}");
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let e = parse("jobs:\n  a: [1, 2\n").expect_err("unclosed");
        assert!(e.pos.line >= 2, "{e}");
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in "[-:\\[\\]{}&*!|>'\" a-z0-9#\n]{0,200}") {
            let _ = parse(&text);
        }
    }
}
