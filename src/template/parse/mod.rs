//! Parser: tokens → item lists, one per template name, with Go's parse-time checks (undefined
//! variables, unknown functions, `{{break}}` outside `range`, …) and Go's error texts
//! (`template: NAME:LINE: MESSAGE`).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod pipeline;

use super::ast::{Branch, Node, is_empty_tree};
use super::gostr::go_unquote;
use super::lex::{Item, ItemType, lex};
use std::collections::HashMap;

/// Deepest nesting of parentheses and of `if`/`range`/`with`/`define` bodies accepted.
pub(super) const MAX_NESTING: usize = 100;

/// The named item lists of one parsed source text.
pub(super) type TreeSet = HashMap<String, Vec<Node>>;

/// Parses `text` as template `name`; `has_func` says which function names exist.
/// Err is Go's message, e.g. `template: x:1: undefined variable "$y"`.
pub(super) fn parse(
    name: &str,
    text: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<TreeSet, String> {
    let break_ok = !has_func("break") && !has_func("continue");
    let mut p = Parser {
        items: lex(text, break_ok).into_iter(),
        token: [eof_item(), eof_item(), eof_item()],
        peek_count: 0,
        vars: vec!["$".to_string()],
        parse_name: name,
        has_func,
        tree_set: TreeSet::new(),
        action_line: 0,
        range_depth: 0,
        depth: 0,
    };
    let root = p.parse_top()?;
    p.add(name, root)?;
    Ok(p.tree_set)
}

fn eof_item() -> Item {
    Item {
        typ: ItemType::Eof,
        pos: 0,
        val: String::new(),
        line: 0,
    }
}

/// Result of parsing one item of a list: a node, or the `{{end}}`/`{{else}}` closing it.
enum Parsed {
    Node(Node),
    End,
    Else,
}

struct Parser<'a> {
    items: std::vec::IntoIter<Item>,
    /// Go's three-token look-ahead buffer; `token[0]` is the latest token read from the lexer.
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    parse_name: &'a str,
    has_func: &'a dyn Fn(&str) -> bool,
    tree_set: TreeSet,
    action_line: usize,
    range_depth: usize,
    depth: usize,
}

type PResult<T> = Result<T, String>;

impl Parser<'_> {
    fn lex_next(&mut self) -> Item {
        // After Eof/Error the lexer keeps answering Eof.
        self.items.next().unwrap_or_else(eof_item)
    }

    fn next(&mut self) -> Item {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = self.lex_next();
        }
        self.token
            .get(self.peek_count)
            .cloned()
            .unwrap_or_else(eof_item)
    }

    fn backup(&mut self) {
        self.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.token[1] = t1;
        self.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.token[1] = t1;
        self.token[2] = t2;
        self.peek_count = 3;
    }

    fn peek(&mut self) -> Item {
        if self.peek_count > 0 {
            return self
                .token
                .get(self.peek_count - 1)
                .cloned()
                .unwrap_or_else(eof_item);
        }
        self.peek_count = 1;
        self.token[0] = self.lex_next();
        self.token[0].clone()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, msg: impl std::fmt::Display) -> String {
        format!(
            "template: {}:{}: {}",
            self.parse_name, self.token[0].line, msg
        )
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(
                    " in action started at {}:{}",
                    self.parse_name, self.action_line
                );
                if token.val.ends_with(" action") {
                    extra = extra.split_off(" in action".len());
                }
            }
            return Err(self.errorf(format!("{token}{extra}")));
        }
        Err(self.errorf(format!("unexpected {token} in {context}")))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != expected {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn enter(&mut self, what: &str) -> PResult<()> {
        if self.depth >= MAX_NESTING {
            return Err(self.errorf(format!("max {what} depth exceeded")));
        }
        self.depth += 1;
        Ok(())
    }

    fn add(&mut self, name: &str, root: Vec<Node>) -> PResult<()> {
        match self.tree_set.get(name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return Err(self.errorf(format!(
                        "template: multiple definition of template {}",
                        super::gostr::go_quote(name)
                    )));
                }
            }
            _ => {
                self.tree_set.insert(name.to_string(), root);
            }
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(root)
    }

    /// Runs `f` as a fresh tree (own variables, range depth and action line), as Go does for
    /// `define` and `block` bodies.
    fn in_new_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.enter("nesting")?;
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let action_line = std::mem::replace(&mut self.action_line, 0);
        let r = f(self);
        self.vars = vars;
        self.range_depth = range_depth;
        self.action_line = action_line;
        self.depth -= 1;
        r
    }

    fn parse_definition(&mut self) -> PResult<()> {
        self.in_new_tree(|p| {
            const CONTEXT: &str = "define clause";
            let name = p.next_non_space();
            if name.typ != ItemType::String && name.typ != ItemType::RawString {
                return p.unexpected(&name, CONTEXT);
            }
            let name = go_unquote(&name.val).map_err(|e| p.errorf(e))?;
            p.expect(ItemType::RightDelim, CONTEXT)?;
            let (root, end) = p.item_list()?;
            if !matches!(end, Parsed::End) {
                return Err(p.errorf(format!("unexpected {{{{else}}}} in {CONTEXT}")));
            }
            p.add(&name, root)
        })
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Parsed)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(token.val))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        let node = match token.typ {
            ItemType::Block => self.block_control()?,
            ItemType::Break | ItemType::Continue => {
                let what = if token.typ == ItemType::Break {
                    "break"
                } else {
                    "continue"
                };
                let t = self.next_non_space();
                if t.typ != ItemType::RightDelim {
                    return self.unexpected(&t, &format!("{{{{{what}}}}}"));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{{{{{what}}}}} outside {{{{range}}}}")));
                }
                if token.typ == ItemType::Break {
                    Node::Break { pos: token.pos }
                } else {
                    Node::Continue { pos: token.pos }
                }
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => Node::If(self.parse_control("if")?),
            ItemType::Range => Node::Range(self.parse_control("range")?),
            ItemType::With => Node::With(self.parse_control("with")?),
            ItemType::Template => self.template_control()?,
            _ => {
                self.backup();
                let pos = self.peek().pos;
                Node::Action {
                    pos,
                    pipe: self.pipeline("command", ItemType::RightDelim)?,
                }
            }
        };
        Ok(Parsed::Node(node))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter("nesting")?;
        let n_vars = self.vars.len();
        let r = self.parse_control_inner(context);
        self.vars.truncate(n_vars);
        self.depth -= 1;
        r
    }

    fn parse_control_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let mut else_list = None;
        if let Parsed::Else = next {
            let nested = match self.peek().typ {
                ItemType::If if context == "if" => Some(ItemType::If),
                ItemType::With if context == "with" => Some(ItemType::With),
                _ => None,
            };
            if let Some(kw) = nested {
                // `{{else if x}}…{{end}}` is `{{else}}{{if x}}…{{end}}{{end}}`.
                self.next();
                let inner = self.parse_control(context)?;
                else_list = Some(vec![if kw == ItemType::If {
                    Node::If(inner)
                } else {
                    Node::With(inner)
                }]);
            } else {
                let (l, next) = self.item_list()?;
                if !matches!(next, Parsed::End) {
                    return Err(self.errorf("expected end; found {{else}}"));
                }
                else_list = Some(l);
            }
        }
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, token: &Item, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => {
                go_unquote(&token.val).map_err(|e| self.errorf(e))
            }
            _ => self.unexpected(token, context),
        }
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        self.in_new_tree(|p| {
            let (root, end) = p.item_list()?;
            if !matches!(end, Parsed::End) {
                return Err(p.errorf(format!("unexpected {{{{else}}}} in {CONTEXT}")));
            }
            p.add(&name, root)
        })?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }
}
