//! Parser wrapper: `promql-parser` errors become `bad_data`.

use crate::error::{Error, Result};
use promql_parser::parser::Expr;

/// Longest query text accepted.
const MAX_QUERY_LEN: usize = 64 * 1024;

/// Parses a PromQL expression.
pub(crate) fn parse(q: &str) -> Result<Expr> {
    if q.len() > MAX_QUERY_LEN {
        return Err(Error::bad_data("query too long"));
    }
    promql_parser::parser::parse(q).map_err(|e| Error::bad_data(format!("parse error: {e}")))
}
