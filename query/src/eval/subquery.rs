//! Subqueries: the inner expression is evaluated once over the whole outer range, at steps
//! aligned to multiples of the subquery step, then windowed per outer step.

use super::{Ctx, DEFAULT_SUBQUERY_STEP_MS, Evaluator, RangeInput, duration_ms, offset_ms};
use crate::error::{Error, Result};
use argus_storage::CounterResetHint;
use promql_parser::parser::SubqueryExpr;

impl Evaluator<'_> {
    pub(crate) fn subquery(&self, sq: &SubqueryExpr, c: Ctx) -> Result<RangeInput> {
        let range = duration_ms(sq.range);
        let step = sq.step.map(duration_ms).unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
        if step <= 0 {
            return Err(Error::bad_data("zero step in subquery"));
        }
        let offset = offset_ms(&sq.offset);
        let at = self.at_ms(&sq.at);
        let first = at.unwrap_or(c.start) - offset - range;
        let last = at.unwrap_or(c.end) - offset;
        // First multiple of `step` strictly after the window start (left-open window).
        let mut start = first.div_euclid(step) * step;
        if start <= first {
            start += step;
        }
        if start > last {
            return Ok(RangeInput {
                series: Vec::new(),
                range,
                offset,
                at,
                selector: None,
            });
        }
        let end = last - (last - start).rem_euclid(step);
        let inner = Ctx { start, end, step };
        let mut series = self.eval_vector(&sq.expr, inner)?;
        // As Prometheus: explicit reset hints are dropped, since a subquery may skip or repeat
        // the samples they describe.
        for s in &mut series {
            for (_, h) in &mut s.hists {
                if matches!(
                    h.counter_reset_hint,
                    CounterResetHint::CounterReset | CounterResetHint::NotCounterReset
                ) {
                    h.counter_reset_hint = CounterResetHint::Unknown;
                }
            }
        }
        Ok(RangeInput {
            series,
            range,
            offset,
            at,
            selector: None,
        })
    }
}
