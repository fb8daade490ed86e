//! Agent mode (`--agent`), as Prometheus's: Argus scrapes, accepts pushes and remote write, and
//! forwards everything through its remote-write queues; it keeps only a WAL under
//! `--storage.agent.path`. No block is written (`Options::write_blocks = false`), no rule is
//! evaluated (the config may not name `rule_files`, `alerting` or `remote_read`, as in
//! Prometheus), and the local query API answers Prometheus's agent error (`api::agent`).
//!
//! WAL truncation: every `--storage.agent.wal-truncate-frequency` the head range older than
//! that is dropped and the WAL checkpointed below it, keeping the segments a remote-write queue
//! has not had acknowledged yet (bounded by `--storage.remote.max-backlog`). With no queue,
//! the data is dropped at the first truncation, as Prometheus's agent does.
//!
//! Retention, as Prometheus's `--storage.agent.retention.*`: a head range is truncated only
//! once its samples are at least `min-time` old (by the wall clock), and WAL segments kept for
//! a queue that has not acknowledged them are deleted anyway once last written more than
//! `max-time` ago (counted in `argus_remote_storage_wal_segments_dropped_total`). As in
//! Prometheus, `0` means the default (5m, 4h), and `max-time` is raised to `min-time` and to
//! the truncation frequency when below them.

use crate::config::Config;
use argus_storage::{Db, Options};
use std::time::Duration;

/// Shortest accepted truncation period (the head keeps 1.5 periods).
const MIN_TRUNCATE_EVERY: Duration = Duration::from_secs(1);
/// Prometheus's default `--storage.agent.retention.min-time`.
const DEFAULT_MIN_TIME: Duration = Duration::from_secs(5 * 60);
/// Prometheus's default `--storage.agent.retention.max-time`.
const DEFAULT_MAX_TIME: Duration = Duration::from_secs(4 * 3600);

/// The `--storage.agent.*` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOptions {
    /// `--storage.agent.wal-truncate-frequency`.
    pub truncate_every: Duration,
    /// `--storage.agent.wal-segment-size`, bytes.
    pub wal_segment_size: u64,
    /// `--storage.agent.retention.min-time`: samples younger than this are never truncated.
    pub min_time: Duration,
    /// `--storage.agent.retention.max-time`: unacknowledged WAL segments older than this are
    /// deleted anyway.
    pub max_time: Duration,
}

impl AgentOptions {
    /// Validates the flag values (`parse_bytes` is the flags module's size parser).
    pub fn from_flags(
        truncate_every: &str,
        segment_size: &str,
        parse_bytes: fn(&str) -> Option<u64>,
    ) -> Result<AgentOptions, String> {
        let truncate_every = crate::config::parse_duration(truncate_every)
            .map_err(|e| format!("--storage.agent.wal-truncate-frequency: {e}"))?;
        if truncate_every < MIN_TRUNCATE_EVERY {
            return Err(format!(
                "--storage.agent.wal-truncate-frequency: must be at least {MIN_TRUNCATE_EVERY:?}"
            ));
        }
        let wal_segment_size = parse_bytes(segment_size)
            .filter(|n| (32 << 10..=1 << 30).contains(n))
            .ok_or_else(|| {
                format!(
                    "--storage.agent.wal-segment-size: invalid size {segment_size:?} (32KB to 1GB)"
                )
            })?;
        Ok(AgentOptions {
            truncate_every,
            wal_segment_size,
            min_time: DEFAULT_MIN_TIME,
            max_time: DEFAULT_MAX_TIME,
        })
    }

    /// Sets the `--storage.agent.retention.*` bounds (`0`: the default), adjusted as
    /// Prometheus does: `max_time` at least `min_time` and the truncation period.
    pub fn with_retention(
        mut self,
        min_time: &str,
        max_time: &str,
    ) -> Result<AgentOptions, String> {
        let parse = |flag: &str, v: &str, default: Duration| {
            crate::config::parse_duration(v)
                .map(|d| if d.is_zero() { default } else { d })
                .map_err(|e| format!("--storage.agent.retention.{flag}: {e}"))
        };
        self.min_time = parse("min-time", min_time, DEFAULT_MIN_TIME)?;
        self.max_time = parse("max-time", max_time, DEFAULT_MAX_TIME)?
            .max(self.min_time)
            .max(self.truncate_every);
        Ok(self)
    }

    /// The storage options of an agent: a WAL-only head cut every `truncate_every`, not before
    /// its samples are `min_time` old; queues keep segments up to `max_time` (and `max_backlog`
    /// bytes).
    pub fn db_options(&self, max_backlog: Option<u64>) -> Options {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Options {
            retention_ms: None,
            block_range_ms: ms(self.truncate_every),
            wal_segment_size: self.wal_segment_size,
            wal_max_backlog_bytes: max_backlog,
            wal_max_backlog_age_ms: Some(ms(self.max_time)),
            min_cut_age_ms: ms(self.min_time),
            write_blocks: false,
            ..Options::default()
        }
    }
}

/// Refuses what an agent cannot do, with Prometheus's messages.
pub fn check_config(cfg: &Config) -> Result<(), String> {
    if !cfg.alerting.alertmanagers.is_empty() || !cfg.alerting.alert_relabel_configs.is_empty() {
        return Err("field alerting is not allowed in agent mode".into());
    }
    if !cfg.rule_files.is_empty() {
        return Err("field rule_files is not allowed in agent mode".into());
    }
    if !cfg.remote_read.is_empty() {
        return Err("field remote_read is not allowed in agent mode".into());
    }
    Ok(())
}

/// Truncates the agent's WAL every half period (so the head never spans much more than 1.5
/// periods) until the Db is closed.
pub fn spawn_truncation(db: Db, opts: &AgentOptions) -> tokio::task::JoinHandle<()> {
    let every = opts.truncate_every / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let d = db.clone();
            match tokio::task::spawn_blocking(move || d.compact()).await {
                Ok(Ok(())) => {}
                Ok(Err(argus_storage::Error::Closed)) | Err(_) => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "agent WAL truncation failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_config_checks() {
        let bytes = |s: &str| {
            s.strip_suffix("KB")
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| n << 10)
        };
        let o = AgentOptions::from_flags("2h", "64KB", bytes).unwrap();
        assert_eq!(o.truncate_every, Duration::from_secs(7200));
        assert_eq!(o.db_options(None).block_range_ms, 7_200_000);
        assert!(!o.db_options(None).write_blocks);
        assert!(AgentOptions::from_flags("10ms", "64KB", bytes).is_err());
        assert!(AgentOptions::from_flags("2h", "1KB", bytes).is_err());
        // Retention: Prometheus's defaults for 0, max raised to min and to the period.
        assert_eq!(
            (o.min_time, o.max_time),
            (DEFAULT_MIN_TIME, DEFAULT_MAX_TIME)
        );
        let r = |min: &str, max: &str| {
            let o = o.clone().with_retention(min, max).unwrap();
            (o.min_time.as_secs(), o.max_time.as_secs())
        };
        assert_eq!(r("0s", "0s"), (300, 4 * 3600));
        assert_eq!(r("1m", "3h"), (60, 3 * 3600));
        assert_eq!(r("5h", "3h"), (5 * 3600, 5 * 3600));
        assert_eq!(r("1s", "10s"), (1, 7200));
        assert!(o.clone().with_retention("x", "1h").is_err());
        let d = o.with_retention("1m", "3h").unwrap().db_options(None);
        assert_eq!(
            (d.min_cut_age_ms, d.wal_max_backlog_age_ms),
            (60_000, Some(10_800_000))
        );
        let cfg = Config::parse("rule_files: [a.yml]\n").unwrap();
        assert_eq!(
            check_config(&cfg),
            Err("field rule_files is not allowed in agent mode".into())
        );
        let cfg = Config::parse("remote_read: [{url: 'http://x/'}]\n").unwrap();
        assert_eq!(
            check_config(&cfg),
            Err("field remote_read is not allowed in agent mode".into())
        );
        assert_eq!(check_config(&Config::parse("{}\n").unwrap()), Ok(()));
    }
}
