//! The push pool: every interval, expire groups past their TTL, then append every group's
//! series to storage at the current time; series seen last round but gone now get a stale marker.

use super::service::{GroupEntry, PushService, now_nanos};
use argus_storage::{Appendable, Appender, Labels, SampleValue, SeriesRef, Timestamp, stale_nan};
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
    /// Samples (and markers) appended but lost to a failed commit.
    pub uncommitted: usize,
}

/// Most samples (and stale markers) per commit. A commit is one WAL batch and its samples one
/// record, capped at 64 MiB (about 6 M samples); committing in bounded batches keeps every
/// round under it, whatever the number of pushed series, and bounds the appender's memory.
pub(crate) const COMMIT_BATCH: usize = 100_000;

impl PushService {
    /// One evaluation of the pool at `t` ms: TTL expiry, appends, stale markers, commits. The
    /// appends and commits (WAL writes and syncs) run on a blocking thread.
    pub(crate) async fn evaluate(&self, st: &mut PoolState, t: Timestamp) -> RoundStats {
        let mut stats = RoundStats::default();
        match self.expire(t.saturating_mul(1_000_000)).await {
            Ok(n) => stats.expired = n,
            Err(e) => tracing::error!(error = %e, "push group expiry failed"),
        }
        let groups = self.snapshot();
        let appendable = self.appendable.clone();
        let mut owned = std::mem::take(st);
        let joined = tokio::task::spawn_blocking(move || {
            let s = append_round(&*appendable, &mut owned, &groups, t, COMMIT_BATCH);
            (owned, s)
        })
        .await;
        match joined {
            Ok((owned, s)) => {
                *st = owned;
                RoundStats {
                    expired: stats.expired,
                    ..s
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "push pool round failed");
                stats
            }
        }
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

/// Appends every group's series at `t` and stale markers for series gone since the last round,
/// committing after every `batch` appends. A failed commit loses that batch for this round
/// only: the next round appends every series again.
pub(crate) fn append_round(
    appendable: &dyn Appendable,
    st: &mut PoolState,
    groups: &[Arc<GroupEntry>],
    t: Timestamp,
    batch: usize,
) -> RoundStats {
    let mut stats = RoundStats::default();
    st.round += 1;
    let round = st.round;
    let mut app = appendable.appender();
    let mut pending = 0usize;
    for e in groups {
        for (labels, v) in &e.series {
            let slot = st.series.get_mut(labels);
            let cached = slot.as_ref().and_then(|s| s.0);
            let appended = match v {
                SampleValue::Float(v) => app.append(cached, labels, t, *v),
                SampleValue::Histogram(h) => app.append_histogram(cached, labels, t, h),
            };
            match appended {
                Ok(r) => {
                    stats.appended += 1;
                    pending += 1;
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
            stats.uncommitted += commit(app.as_mut(), &mut pending, batch, false);
        }
    }
    let mut gone = Vec::new();
    st.series.retain(|labels, (r, last)| {
        if *last == round {
            return true;
        }
        gone.push((labels.clone(), *r));
        false
    });
    for (labels, r) in gone {
        match app.append(r, &labels, t, stale_nan()) {
            Ok(_) => {
                stats.stale += 1;
                pending += 1;
            }
            Err(_) => stats.rejected += 1,
        }
        stats.uncommitted += commit(app.as_mut(), &mut pending, batch, false);
    }
    stats.uncommitted += commit(app.as_mut(), &mut pending, batch, true);
    stats
}

/// Commits when `pending` reached `batch` (or is non-zero and `force`); returns the samples a
/// failed commit dropped.
fn commit(app: &mut dyn Appender, pending: &mut usize, batch: usize, force: bool) -> usize {
    if *pending == 0 || (!force && *pending < batch.max(1)) {
        return 0;
    }
    let n = std::mem::take(pending);
    match app.commit() {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, samples = n, "push pool commit failed");
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::store::Group;
    use argus_storage::testing::MemStorage;
    use argus_storage::{Result as StorageResult, SeriesRef};

    /// `MemStorage` whose commits refuse more than `cap` samples, as the WAL refuses a record
    /// over 64 MiB (about 6 M samples): the failure the pool hit beyond ~6 M pushed series.
    struct Capped {
        mem: MemStorage,
        cap: usize,
    }

    struct CappedAppender {
        inner: Box<dyn Appender>,
        n: usize,
        cap: usize,
    }

    impl Appendable for Capped {
        fn appender(&self) -> Box<dyn Appender> {
            Box::new(CappedAppender {
                inner: self.mem.appender(),
                n: 0,
                cap: self.cap,
            })
        }
    }

    impl Appender for CappedAppender {
        fn append(
            &mut self,
            r: Option<SeriesRef>,
            l: &Labels,
            t: Timestamp,
            v: f64,
        ) -> StorageResult<SeriesRef> {
            self.n += 1;
            self.inner.append(r, l, t, v)
        }
        fn commit(&mut self) -> StorageResult<()> {
            let n = std::mem::take(&mut self.n);
            if n > self.cap {
                self.inner.rollback();
                return Err(argus_storage::Error::InvalidArgument(format!(
                    "WAL record of {n} samples over the cap"
                )));
            }
            self.inner.commit()
        }
        fn rollback(&mut self) {
            self.n = 0;
            self.inner.rollback();
        }
    }

    fn groups(n_groups: usize, per_group: usize) -> Vec<Arc<GroupEntry>> {
        (0..n_groups)
            .map(|g| {
                let series = (0..per_group)
                    .map(|i| {
                        let l = Labels::from_pairs(&[
                            ("__name__", "pushed"),
                            ("g", &g.to_string()),
                            ("i", &i.to_string()),
                        ]);
                        (l, SampleValue::Float(i as f64))
                    })
                    .collect();
                Arc::new(GroupEntry {
                    group: Group::default(),
                    series,
                })
            })
            .collect()
    }

    #[test]
    fn round_larger_than_one_commit_lands_completely() {
        let storage = Capped {
            mem: MemStorage::new(),
            cap: 3000,
        };
        let g = groups(10, 1000);
        // One commit per round (as before): the whole round is refused.
        let s = append_round(&storage, &mut PoolState::default(), &g, 1000, usize::MAX);
        assert_eq!(s.uncommitted, 10_000);
        assert!(storage.mem.dump().is_empty());
        // Bounded batches: every acknowledged series lands, round after round.
        let mut st = PoolState::default();
        for t in [1000, 2000] {
            let s = append_round(&storage, &mut st, &g, t, 2500);
            assert_eq!((s.appended, s.uncommitted), (10_000, 0));
        }
        let dump = storage.mem.dump();
        assert_eq!(dump.len(), 10_000);
        assert!(dump.iter().all(|(_, s)| s.len() == 2));
        // A group gone: stale markers go out in bounded batches too.
        let s = append_round(&storage, &mut st, &g[..1], 3000, 2500);
        assert_eq!((s.appended, s.stale, s.uncommitted), (1000, 9000, 0));
    }
}
