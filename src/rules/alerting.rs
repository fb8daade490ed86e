//! The alert state machine of one alerting rule (FORMAT.md C.4, C.5, C.8).

use super::expand::{self, AlertData, EngineQuery};
use super::file::RuleSpec;
use super::notify::OutgoingAlert;
use argus_storage::{Labels, METRIC_NAME};
use std::collections::BTreeMap;

/// How long a resolved instance is kept (and re-notified) before it is deleted.
pub(crate) const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// State of an alert instance or (highest instance state) of an alerting rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    /// Before the rule's first evaluation.
    Unknown,
    /// Resolved (instance) / nothing active (rule).
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Firing.
    Firing,
}

impl AlertState {
    /// `unknown`, `inactive`, `pending` or `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Unknown => "unknown",
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance, identified by its label set.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub valid_until_ms: i64,
    pub keep_firing_since_ms: Option<i64>,
}

impl Alert {
    /// C.8: pending never; resolved since last sent; or last sent + resend delay < t.
    pub(crate) fn needs_sending(&self, t_ms: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_ms;
        if let Some(r) = self.resolved_at_ms
            && last.is_none_or(|l| r > l)
        {
            return true;
        }
        match last {
            None => true,
            Some(l) => l.saturating_add(resend_delay_ms) < t_ms,
        }
    }
}

/// Per-rule alert state.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlertSet {
    pub active: BTreeMap<Labels, Alert>,
    /// ALERTS/ALERTS_FOR_STATE are written (C.6 finished, or promtool).
    pub restored: bool,
}

/// Inputs of one evaluation that do not belong to the rule.
pub(crate) struct AlertEval<'a> {
    pub t_ms: i64,
    pub limit: usize,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub query: EngineQuery<'a>,
}

impl AlertSet {
    /// Applies one query result (C.4) and returns the `ALERTS`/`ALERTS_FOR_STATE` samples to
    /// write at `qt_ms` (empty until restored). On error the caller marks the rule unhealthy.
    pub(crate) fn eval(
        &mut self,
        rule: &RuleSpec,
        result: Vec<(Labels, f64)>,
        ev: &AlertEval<'_>,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let t = ev.t_ms;
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (metric, value) in result {
            let data = AlertData {
                labels: &metric,
                external_labels: ev.external_labels,
                external_url: ev.external_url,
                value,
                eval_time_secs: t as f64 / 1000.0,
            };
            let mut labels = metric.clone();
            labels.remove(METRIC_NAME);
            for (k, v) in &rule.labels {
                labels.set(k, &expand::expand(&rule.name, v, &data, &ev.query));
            }
            labels.set("alertname", &rule.name);
            let annotations: BTreeMap<String, String> = rule
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), expand::expand(&rule.name, v, &data, &ev.query)))
                .collect();
            if fresh.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            fresh.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value,
                    active_at_ms: t,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    last_sent_ms: None,
                    valid_until_ms: 0,
                    keep_firing_since_ms: None,
                },
            );
        }
        let in_result: Vec<Labels> = fresh.keys().cloned().collect();
        for (k, a) in fresh {
            match self.active.get_mut(&k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(k, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active_count = 0usize;
        let mut delete = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if in_result.binary_search(k).is_err() {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && rule.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(t);
                    keep_firing = t.saturating_sub(since) < rule.keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at_ms
                        .is_some_and(|r| t.saturating_sub(r) > RESOLVED_RETENTION_MS)
                {
                    delete.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(t);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since_ms = None;
            }
            active_count += 1;
            if a.state == AlertState::Pending && t.saturating_sub(a.active_at_ms) >= rule.for_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(t);
            } else if a.state == AlertState::Firing
                && a.keep_firing_since_ms.is_none()
                && t.saturating_sub(a.active_at_ms) < rule.for_ms
            {
                // `for` was raised by a reload: back to pending until the new `for` has passed.
                a.state = AlertState::Pending;
                a.fired_at_ms = None;
            }
            if self.restored {
                out.push((alerts_series(&a.labels, a.state), 1.0));
                let mut fs = a.labels.clone();
                fs.set(METRIC_NAME, "ALERTS_FOR_STATE");
                out.push((fs, (a.active_at_ms.div_euclid(1000)) as f64));
            }
        }
        for k in delete {
            self.active.remove(&k);
        }
        if ev.limit > 0 && active_count > ev.limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {} with {active_count} alerts",
                ev.limit
            ));
        }
        Ok(out)
    }

    /// The instances due for sending at `t_ms` (C.8); marks them sent.
    pub(crate) fn due(
        &mut self,
        t_ms: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
        generator_url: &str,
    ) -> Vec<OutgoingAlert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(t_ms, resend_delay_ms) {
                continue;
            }
            a.last_sent_ms = Some(t_ms);
            a.valid_until_ms =
                t_ms.saturating_add(resend_delay_ms.max(interval_ms).saturating_mul(4));
            out.push(OutgoingAlert {
                labels: a.labels.clone(),
                annotations: Labels::from_pairs(
                    &a.annotations.iter().collect::<Vec<(&String, &String)>>(),
                ),
                starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
                ends_at_ms: a.resolved_at_ms.unwrap_or(a.valid_until_ms),
                generator_url: generator_url.to_string(),
            });
        }
        out
    }

    /// Rule-level state: the highest instance state (pending and firing only count).
    pub(crate) fn rule_state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .filter(|s| *s != AlertState::Inactive)
            .max()
            .unwrap_or(AlertState::Inactive)
    }
}

/// `ALERTS{<labels>, alertstate="…"}`.
fn alerts_series(labels: &Labels, state: AlertState) -> Labels {
    let mut l = labels.clone();
    l.set(METRIC_NAME, "ALERTS");
    l.set("alertstate", state.as_str());
    l
}
