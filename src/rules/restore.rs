//! Restoring `for` state from `ALERTS_FOR_STATE` after a restart (FORMAT.md C.6).

use super::file::RuleSpec;
use argus_storage::{Labels, METRIC_NAME, MatchType, Matcher, Queryable, is_stale_nan};
use std::collections::BTreeMap;

/// The last `ALERTS_FOR_STATE` sample of every series of `rule` in `[mint, maxt]`, keyed by the
/// series labels without `__name__`: (timestamp ms, value = old `ActiveAt` in seconds). Series
/// whose last sample is a stale marker are left out.
pub(crate) fn for_state_series(
    queryable: &dyn Queryable,
    rule: &RuleSpec,
    mint: i64,
    maxt: i64,
) -> BTreeMap<Labels, (i64, f64)> {
    let mut out = BTreeMap::new();
    let mut matchers = Vec::new();
    let mut push = |name: &str, value: &str| {
        if let Ok(m) = Matcher::new(MatchType::Equal, name, value) {
            matchers.push(m);
        }
    };
    push(METRIC_NAME, "ALERTS_FOR_STATE");
    push("alertname", &rule.name);
    for (k, v) in &rule.labels {
        if !v.contains("{{") {
            push(k, v);
        }
    }
    let q = match queryable.querier(mint, maxt) {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(rule = %rule.name, err = %e, "cannot query ALERTS_FOR_STATE for restoring");
            return out;
        }
    };
    let mut set = q.select(&matchers);
    while set.next() {
        let mut labels = set.labels().clone();
        labels.remove(METRIC_NAME);
        let mut it = set.samples();
        let mut last = None;
        while it.next() {
            last = Some(it.at());
        }
        if let Some((t, v)) = last
            && !is_stale_nan(v)
        {
            out.insert(labels, (t, v));
        }
    }
    out
}

/// The restored `ActiveAt` (ms) of an instance whose last `ALERTS_FOR_STATE` sample was
/// `old_active_secs` at `down_at_ms`, restoring at `now_ms`. `None`: keep the current value.
pub(crate) fn restored_active_at(
    now_ms: i64,
    down_at_ms: i64,
    old_active_secs: f64,
    for_ms: i64,
    grace_ms: i64,
) -> Option<i64> {
    if !old_active_secs.is_finite() {
        return None;
    }
    // Prometheus works in whole seconds here.
    let down_at = down_at_ms.div_euclid(1000) * 1000;
    let old_active = (old_active_secs as i64).saturating_mul(1000);
    // Values come from storage (anyone may write ALERTS_FOR_STATE): saturate, never overflow.
    let remaining = for_ms.saturating_sub(down_at.saturating_sub(old_active));
    Some(if remaining <= 0 {
        old_active
    } else if remaining < grace_ms {
        now_ms.saturating_add(grace_ms).saturating_sub(for_ms)
    } else {
        old_active.saturating_add(now_ms.saturating_sub(down_at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_branches() {
        let m = 60_000;
        // Was firing when it went down: the old ActiveAt comes back.
        assert_eq!(
            restored_active_at(100 * m, 50 * m, 0.0, 10 * m, 10 * m),
            Some(0)
        );
        // 2m of a 30m `for` left, less than the 10m grace: fires one grace period after now.
        assert_eq!(
            restored_active_at(100 * m, 28 * m, 0.0, 30 * m, 10 * m),
            Some(100 * m + 10 * m - 30 * m)
        );
        // 20m left: the downtime does not count.
        assert_eq!(
            restored_active_at(100 * m, 10 * m, 0.0, 30 * m, 10 * m),
            Some(90 * m)
        );
        assert_eq!(
            restored_active_at(100 * m, 10 * m, f64::NAN, 30 * m, 10 * m),
            None
        );
    }
}
