//! The statements of the `.test` script format (`load`, `clear`, `eval` and their
//! expectations; see the shared FORMAT.md): the runner's half of the parser. Series notation
//! and value sequences are in `parse.rs`, which `argus test rules` shares.

use super::parse::{
    Item, parse_duration, parse_number, parse_sequence, parse_series, split_series,
};
use argus_storage::Labels;
use std::sync::LazyLock;

/// A `load` block.
#[derive(Debug)]
pub(crate) struct Load {
    pub interval: i64,
    pub series: Vec<(Labels, Vec<Item>)>,
    /// Series whose samples carry start timestamps (`@st` lines).
    pub st_series: Vec<Labels>,
    pub nhcb: bool,
}

/// What an eval expects.
#[derive(Debug, Default)]
pub(crate) struct Expect {
    pub fail: bool,
    pub fail_msg: Option<String>,
    pub fail_regex: Option<String>,
    pub ordered: bool,
    pub scalar: Option<f64>,
    pub string: Option<String>,
    /// `expect range vector from a to b step s`.
    pub range_vector: Option<(i64, i64, i64)>,
    pub series: Vec<(Labels, Vec<Item>)>,
    /// The body mentions a native histogram literal.
    pub histogram: bool,
    /// `expect warn …` lines (`None` = any warning).
    pub warn: Vec<Option<AnnoMatch>>,
    /// `expect info …` lines.
    pub info: Vec<Option<AnnoMatch>>,
    pub no_warn: bool,
    pub no_info: bool,
    /// Deprecated `eval_warn` / `eval_info` headers: at least one required.
    pub some_warn: bool,
    pub some_info: bool,
}

/// How an expected annotation is matched.
#[derive(Clone, Debug)]
pub(crate) enum AnnoMatch {
    /// `msg: <text>`: exact text.
    Msg(String),
    /// `regex: <re>`: unanchored search.
    Regex(String),
}

/// An `eval` statement.
#[derive(Debug)]
pub(crate) struct Eval {
    pub line: usize,
    pub query: String,
    /// `None` for instant queries.
    pub range: Option<(i64, i64, i64)>,
    pub at: i64,
    pub expect: Expect,
}

#[derive(Debug)]
pub(crate) enum Cmd {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
    /// Argus extension for our own files: `set max_samples N` / `set timeout_ms N` /
    /// `set lookback_ms N`.
    Set(String, i64),
}

static EVAL_INSTANT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
        .expect("BUG: static regex")
});
static EVAL_RANGE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .expect("BUG: static regex")
});

fn unquote(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('`') && t.ends_with('`') {
        return Ok(t[1..t.len() - 1].to_string());
    }
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        let mut out = String::new();
        let mut it = t[1..t.len() - 1].chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some(o) => {
                        out.push('\\');
                        out.push(o);
                    }
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return Ok(out);
    }
    Err(format!("bad string literal {t:?}"))
}

/// Parses a whole file into commands. A malformed file is an error (the reference rejects it).
pub(crate) fn parse_file(src: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> = src
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        let word = l.split_whitespace().next().unwrap_or("").to_lowercase();
        if word == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if word == "set" {
            let parts: Vec<&str> = l.split_whitespace().collect();
            let (Some(k), Some(v)) = (parts.get(1), parts.get(2)) else {
                return Err(format!("line {lineno}: bad set"));
            };
            let v: i64 = v
                .parse()
                .map_err(|_| format!("line {lineno}: bad set value"))?;
            cmds.push(Cmd::Set(k.to_string(), v));
            i += 1;
        } else if word.starts_with("load") {
            let parts: Vec<&str> = l.split_whitespace().collect();
            let interval = parse_duration(parts.get(1).copied().unwrap_or(""))
                .map_err(|e| format!("line {lineno}: {e}"))?;
            let mut load = Load {
                interval,
                series: Vec::new(),
                st_series: Vec::new(),
                nhcb: word == "load_with_nhcb",
            };
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let (series, rest, st) =
                    split_series(&lines[i]).map_err(|e| format!("line {}: {e}", i + 1))?;
                let labels = parse_series(series).map_err(|e| format!("line {}: {e}", i + 1))?;
                if st {
                    load.st_series.push(labels);
                } else {
                    let items = parse_sequence(rest).map_err(|e| format!("line {}: {e}", i + 1))?;
                    load.series.retain(|(l, _)| *l != labels);
                    load.series.push((labels, items));
                }
                i += 1;
            }
            cmds.push(Cmd::Load(load));
        } else if word.starts_with("eval") {
            let mut ev = parse_eval_header(l).map_err(|e| format!("line {lineno}: {e}"))?;
            ev.line = lineno;
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let body = &lines[i];
                let stop = parse_body_line(body, &mut ev.expect)
                    .map_err(|e| format!("line {}: {e}", i + 1))?;
                i += 1;
                if stop {
                    break;
                }
            }
            cmds.push(Cmd::Eval(Box::new(ev)));
        } else {
            return Err(format!("line {lineno}: invalid command {l:?}"));
        }
    }
    Ok(cmds)
}

fn parse_eval_header(l: &str) -> Result<Eval, String> {
    let mut expect = Expect::default();
    if let Some(c) = EVAL_INSTANT.captures(l) {
        match c.get(1).map(|m| m.as_str()) {
            Some("fail") => expect.fail = true,
            Some("ordered") => expect.ordered = true,
            Some("warn") => expect.some_warn = true,
            Some("info") => expect.some_info = true,
            _ => {}
        }
        let at = parse_duration(c.get(2).map_or("", |m| m.as_str()))?;
        return Ok(Eval {
            line: 0,
            query: c[3].to_string(),
            range: None,
            at,
            expect,
        });
    }
    if let Some(c) = EVAL_RANGE.captures(l) {
        match c.get(1).map(|m| m.as_str()) {
            Some("fail") => expect.fail = true,
            Some("warn") => expect.some_warn = true,
            Some("info") => expect.some_info = true,
            _ => {}
        }
        let start = parse_duration(&c[2])?;
        let end = parse_duration(&c[3])?;
        let step = parse_duration(&c[4])?;
        if end < start {
            return Err("end before start".into());
        }
        return Ok(Eval {
            line: 0,
            query: c[5].to_string(),
            range: Some((start, end, step)),
            at: 0,
            expect,
        });
    }
    Err(format!("invalid eval header {l:?}"))
}

/// Parses one body line into `e`; returns true when the line ends the body.
fn parse_body_line(l: &str, e: &mut Expect) -> Result<bool, String> {
    let first = l.split_whitespace().next().unwrap_or("");
    if first == "expect" {
        let rest = l["expect".len()..].trim();
        let (kind, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let tail = tail.trim();
        match kind {
            "fail" => {
                e.fail = true;
                if let Some(m) = tail.strip_prefix("msg:") {
                    e.fail_msg = Some(m.trim().to_string());
                } else if let Some(r) = tail.strip_prefix("regex:") {
                    e.fail_regex = Some(r.trim().to_string());
                }
            }
            "ordered" => e.ordered = true,
            "string" => e.string = Some(unquote(tail)?),
            "range" => {
                // `range vector from <a> to <b> step <s>`
                let p: Vec<&str> = tail.split_whitespace().collect();
                if p.len() != 7
                    || p[0] != "vector"
                    || p[1] != "from"
                    || p[3] != "to"
                    || p[5] != "step"
                {
                    return Err(format!("bad expect range line {l:?}"));
                }
                e.range_vector = Some((
                    parse_duration(p[2])?,
                    parse_duration(p[4])?,
                    parse_duration(p[6])?,
                ));
            }
            "warn" | "info" => {
                let m = if let Some(m) = tail.strip_prefix("msg:") {
                    Some(AnnoMatch::Msg(m.trim().to_string()))
                } else {
                    tail.strip_prefix("regex:")
                        .map(|r| AnnoMatch::Regex(r.trim().to_string()))
                };
                if kind == "warn" {
                    e.warn.push(m);
                } else {
                    e.info.push(m);
                }
            }
            "no_warn" => e.no_warn = true,
            "no_info" => e.no_info = true,
            other => return Err(format!("unknown expectation {other:?}")),
        }
        return Ok(false);
    }
    if first == "expected_fail_message" {
        e.fail_msg = Some(l[first.len()..].trim().to_string());
        return Ok(true);
    }
    if first == "expected_fail_regexp" {
        e.fail_regex = Some(l[first.len()..].trim().to_string());
        return Ok(true);
    }
    if l.contains("{{") {
        e.histogram = true;
    }
    if let Some(v) = parse_number(l.trim()) {
        e.scalar = Some(v);
        return Ok(true);
    }
    let (series, rest, _) = split_series(l)?;
    let labels = parse_series(series)?;
    let items = parse_sequence(rest)?;
    e.series.push((labels, items));
    Ok(false)
}
