//! label_replace and label_join.

use super::merge_same_labels;
use crate::error::{Error, Result};
use crate::eval::{Ctx, Evaluator};
use crate::value::Val;
use argus_storage::METRIC_NAME;
use promql_parser::parser::Expr;

/// A label name is valid when it is non-empty UTF-8 (Prometheus 3's rule); a string literal
/// whose byte escapes are not UTF-8 is not ([`crate::parse::has_raw_bytes`]).
pub(crate) fn valid_label_name(n: &str) -> bool {
    !n.is_empty() && !crate::parse::has_raw_bytes(n)
}

fn arg<'a>(args: &[&'a Expr], i: usize, f: &str) -> Result<&'a Expr> {
    args.get(i)
        .copied()
        .ok_or_else(|| Error::bad_data(format!("missing argument {i} in call to {f}")))
}

pub(crate) fn label_replace(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let dst = ev.eval_string(arg(args, 1, "label_replace")?, c)?;
    let repl = ev.eval_string(arg(args, 2, "label_replace")?, c)?;
    let src = ev.eval_string(arg(args, 3, "label_replace")?, c)?;
    let re_src = ev.eval_string(arg(args, 4, "label_replace")?, c)?;
    let re = regex::Regex::new(&format!("^(?s:{re_src})$")).map_err(|e| {
        Error::bad_data(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    if !valid_label_name(&dst) {
        return Err(Error::bad_data(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut v = ev.eval_vector(arg(args, 0, "label_replace")?, c)?;
    let mut out_buf = String::new();
    for s in &mut v {
        let sv = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&sv) {
            out_buf.clear();
            caps.expand(&repl, &mut out_buf);
            s.labels.set(&dst, &out_buf);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(merge_same_labels(v)?))
}

pub(crate) fn label_join(ev: &Evaluator<'_>, args: &[&Expr], c: Ctx) -> Result<Val> {
    let dst = ev.eval_string(arg(args, 1, "label_join")?, c)?;
    let sep = ev.eval_string(arg(args, 2, "label_join")?, c)?;
    let mut srcs = Vec::new();
    for a in &args[3.min(args.len())..] {
        let s = ev.eval_string(a, c)?;
        if !valid_label_name(&s) {
            return Err(Error::bad_data(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !valid_label_name(&dst) {
        return Err(Error::bad_data(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut v = ev.eval_vector(arg(args, 0, "label_join")?, c)?;
    for s in &mut v {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        s.labels.set(&dst, &joined);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(merge_same_labels(v)?))
}
