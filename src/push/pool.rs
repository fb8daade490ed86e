//! The push pool: every interval, expire groups past their TTL, then append every group's
//! series to storage at the current time; series seen last round but gone now get a stale marker.

use super::service::{PushService, now_nanos};
use argus_storage::{Labels, SeriesRef, Timestamp, stale_nan};
use std::collections::HashMap;
use std::sync::Arc;

/// What the pool remembers between rounds: every series appended, its ref and the round it was
/// last appended in.
#[derive(Default)]
pub(crate) struct PoolState {
    series: HashMap<Labels, (Option<SeriesRef>, u64)>,
    round: u64,
}

/// Counts of one round, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    /// Samples appended.
    pub appended: usize,
    /// Stale markers appended.
    pub stale: usize,
    /// Samples the storage refused.
    pub rejected: usize,
    /// Groups removed by the TTL.
    pub expired: usize,
}

impl PushService {
    /// One evaluation of the pool at `t` ms: TTL expiry, appends, stale markers, commit.
    pub(crate) async fn evaluate(&self, st: &mut PoolState, t: Timestamp) -> RoundStats {
        let mut stats = RoundStats::default();
        match self.expire(t.saturating_mul(1_000_000)).await {
            Ok(n) => stats.expired = n,
            Err(e) => tracing::error!(error = %e, "push group expiry failed"),
        }
        let groups = self.snapshot();
        st.round += 1;
        let round = st.round;
        let mut app = self.appendable.appender();
        for e in &groups {
            for (labels, v) in &e.series {
                let slot = st.series.get_mut(labels);
                let cached = slot.as_ref().and_then(|s| s.0);
                match app.append(cached, labels, t, *v) {
                    Ok(r) => {
                        stats.appended += 1;
                        match slot {
                            Some(s) => *s = (Some(r), round),
                            None => {
                                st.series.insert(labels.clone(), (Some(r), round));
                            }
                        }
                    }
                    Err(err) => {
                        stats.rejected += 1;
                        tracing::debug!(error = %err, series = %labels, "push sample rejected");
                        if let Some(s) = slot {
                            s.1 = round;
                        }
                    }
                }
            }
        }
        st.series.retain(|labels, (r, last)| {
            if *last == round {
                return true;
            }
            match app.append(*r, labels, t, stale_nan()) {
                Ok(_) => stats.stale += 1,
                Err(_) => stats.rejected += 1,
            }
            false
        });
        if let Err(e) = app.commit() {
            tracing::error!(error = %e, "push pool commit failed");
        }
        stats
    }

    /// Runs the pool until `shutdown` turns `true` (or its sender is dropped): every
    /// `interval`, one evaluation at the current wall-clock time.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut st = PoolState::default();
        let mut tick = tokio::time::interval(self.opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let t = now_nanos() / 1_000_000;
                    let s = self.evaluate(&mut st, t).await;
                    tracing::debug!(?s, "push pool round");
                }
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}
