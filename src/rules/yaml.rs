//! A positioned YAML tree for rule and unit-test files: every node keeps its 1-based line and
//! column (as Go's `yaml.v3` reports them), aliases are resolved by copy, and `<<` merge keys are
//! applied by [`Node::entries`]. Decoding helpers produce `yaml.v3`-style messages
//! (`line N: field X not found in type T`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Most nodes one document may expand to (aliases copy their anchor), against alias bombs.
const MAX_NODES: usize = 1_000_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 256;

/// A YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// What a node holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` when unquoted (so `null`, `~` and the empty plain scalar are null).
    Scalar { value: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in document order.
    Map(Vec<(Node, Node)>),
}

/// The result of parsing a YAML text.
pub(crate) struct Document {
    /// The first document's root, `None` for an empty stream or document.
    pub root: Option<Node>,
    /// A second document followed (ignored, as Prometheus does, with a warning).
    pub more_documents: bool,
}

/// Parses the first document of `text`. Errors carry yaml-rust2's message with the position.
pub(crate) fn parse(text: &str) -> Result<Document, String> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    // Open containers: (node, pending key for maps, anchor id).
    let mut stack: Vec<(Node, Option<Node>, usize)> = Vec::new();
    let mut root: Option<Node> = None;
    let mut docs = 0usize;
    let mut count = 0usize;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| format!("yaml: {e}"))?;
        let (line, col) = (mark.line(), mark.col() + 1);
        let done: Option<(Node, usize)> = match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                docs += 1;
                if docs > 1 {
                    return Ok(Document {
                        root,
                        more_documents: true,
                    });
                }
                None
            }
            Event::Scalar(value, style, anchor, _) => {
                let plain = matches!(style, TScalarStyle::Plain);
                Some((
                    Node {
                        kind: Kind::Scalar { value, plain },
                        line,
                        col,
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err("yaml: document nested too deeply".into());
                }
                let kind = if matches!(ev, Event::SequenceStart(..)) {
                    Kind::Seq(Vec::new())
                } else {
                    Kind::Map(Vec::new())
                };
                stack.push((Node { kind, line, col }, None, anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().map(|(mut n, _, a)| {
                // yaml-rust2 marks a block mapping where its first key ends; Go reports where
                // the first key starts (a flow mapping starts at its `{`, before the key).
                if let Kind::Map(entries) = &n.kind
                    && let Some((k, _)) = entries.first()
                    && (k.line, k.col) < (n.line, n.col)
                {
                    (n.line, n.col) = (k.line, k.col);
                }
                (n, a)
            }),
            Event::Alias(id) => {
                let n = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("yaml: line {line}: unknown anchor referenced"))?;
                count = count.saturating_add(size(&n));
                Some((n, 0))
            }
            _ => None,
        };
        let Some((node, anchor)) = done else { continue };
        count += 1;
        if count > MAX_NODES {
            return Err("yaml: document too large (too many nodes after alias expansion)".into());
        }
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some((parent, key, _)) => match &mut parent.kind {
                Kind::Seq(items) => items.push(node),
                Kind::Map(entries) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
                Kind::Scalar { .. } => {}
            },
        }
    }
    Ok(Document {
        root,
        more_documents: false,
    })
}

fn size(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size(k) + size(v))
                .sum::<usize>()
        }
    }
}

impl Node {
    /// Whether this is a null (absent value): `null`, `~` or an empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true } if value.is_empty() || value == "null" || value == "Null" || value == "NULL" || value == "~")
    }

    /// The YAML tag name of the node for type errors (`!!str`, `!!seq`, `!!map`, ...).
    pub fn tag(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
            Kind::Scalar { value, plain } => {
                if !plain {
                    "!!str"
                } else if self.is_null() {
                    "!!null"
                } else if value.parse::<i64>().is_ok() {
                    "!!int"
                } else if value.parse::<f64>().is_ok() {
                    "!!float"
                } else if matches!(value.as_str(), "true" | "false" | "True" | "False") {
                    "!!bool"
                } else {
                    "!!str"
                }
            }
        }
    }

    /// The mapping entries with `<<` merge keys applied (explicit keys win over merged ones,
    /// earlier merge sources over later ones). Non-mappings give `None`.
    pub fn entries(&self) -> Option<Vec<(&Node, &Node)>> {
        let Kind::Map(entries) = &self.kind else {
            return None;
        };
        let mut out: Vec<(&Node, &Node)> = Vec::new();
        let mut merged: Vec<(&Node, &Node)> = Vec::new();
        for (k, v) in entries {
            if k.scalar() == Some("<<") && matches!(&k.kind, Kind::Scalar { plain: true, .. }) {
                let sources: Vec<&Node> = match &v.kind {
                    Kind::Seq(items) => items.iter().collect(),
                    _ => vec![v],
                };
                for s in sources {
                    if let Some(es) = s.entries() {
                        merged.extend(es);
                    }
                }
            } else {
                out.push((k, v));
            }
        }
        for (k, v) in merged {
            let name = k.scalar();
            if !out.iter().any(|(ok, _)| ok.scalar() == name) {
                out.push((k, v));
            }
        }
        Some(out)
    }

    /// The scalar text, or `None` for collections.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// Collects `yaml.v3`-style type errors while decoding (`yaml: unmarshal errors:` + lines).
#[derive(Default)]
pub(crate) struct Errors {
    pub lines: Vec<String>,
    /// Unknown fields are ignored (`--ignore-unknown-fields`).
    pub ignore_unknown: bool,
}

impl Errors {
    /// Records an unknown key unless unknown keys are ignored.
    pub fn unknown(&mut self, key: &Node, ty: &str) {
        if !self.ignore_unknown {
            self.lines.push(format!(
                "line {}: field {} not found in type {ty}",
                key.line,
                key.scalar().unwrap_or("?")
            ));
        }
    }

    /// Records a type mismatch.
    pub fn mismatch(&mut self, n: &Node, ty: &str) {
        let shown = match &n.kind {
            Kind::Scalar { value, .. } => format!(" `{}`", truncate(value)),
            _ => String::new(),
        };
        self.lines.push(format!(
            "line {}: cannot unmarshal {}{shown} into {ty}",
            n.line,
            n.tag()
        ));
    }

    /// The combined message, if any error was recorded.
    pub fn message(&self) -> Option<String> {
        (!self.lines.is_empty()).then(|| {
            let mut s = String::from("yaml: unmarshal errors:");
            for l in &self.lines {
                s.push_str("\n  ");
                s.push_str(l);
            }
            s
        })
    }

    /// Decodes a string scalar (null ⇒ empty); collections are type errors.
    pub fn string(&mut self, n: &Node) -> String {
        if n.is_null() {
            return String::new();
        }
        match &n.kind {
            Kind::Scalar { value, .. } => value.clone(),
            _ => {
                self.mismatch(n, "string");
                String::new()
            }
        }
    }

    /// Decodes a `map[string]string` (null ⇒ empty), keys in document order.
    pub fn string_map(&mut self, n: &Node) -> Vec<(String, String)> {
        if n.is_null() {
            return Vec::new();
        }
        let Some(entries) = n.entries() else {
            self.mismatch(n, "map[string]string");
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in entries {
            let key = self.string(k);
            let val = self.string(v);
            match out.iter_mut().find(|(ok, _)| *ok == key) {
                Some(slot) => slot.1 = val,
                None => out.push((key, val)),
            }
        }
        out
    }

    /// Decodes a sequence (null ⇒ empty) item by item.
    pub fn seq<'n>(&mut self, n: &'n Node, ty: &str) -> Vec<&'n Node> {
        if n.is_null() {
            return Vec::new();
        }
        match &n.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => {
                self.mismatch(n, ty);
                Vec::new()
            }
        }
    }

    /// Decodes an integer.
    pub fn int(&mut self, n: &Node) -> i64 {
        if n.is_null() {
            return 0;
        }
        match n.scalar().and_then(|s| s.parse::<i64>().ok()) {
            Some(v) if matches!(&n.kind, Kind::Scalar { plain: true, .. }) => v,
            _ => {
                self.mismatch(n, "int");
                0
            }
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        let head: String = s.chars().take(37).collect();
        format!("{head}...")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn positions_anchors_and_merge() {
        let doc = parse("a: &x\n  k: 1\n  j: 2\nb:\n  <<: *x\n  k: 3\n").unwrap();
        let root = doc.root.unwrap();
        let e = root.entries().unwrap();
        assert_eq!((e[0].1.line, e[0].1.col), (2, 3));
        let k = e[0].1.entries().unwrap();
        assert_eq!((k[0].1.line, k[0].1.col), (2, 6));
        let b = e[1].1.entries().unwrap();
        let got: Vec<(&str, &str)> = b
            .iter()
            .map(|(k, v)| (k.scalar().unwrap(), v.scalar().unwrap()))
            .collect();
        assert_eq!(got, vec![("k", "3"), ("j", "2")]);
    }

    #[test]
    fn second_document_is_reported() {
        let doc = parse("a: 1\n---\nb: 2\n").unwrap();
        assert!(doc.more_documents);
        assert!(doc.root.is_some());
        let empty = parse("").unwrap();
        assert!(empty.root.is_none());
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            s.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&s).is_err());
    }
}
