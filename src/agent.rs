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

use crate::config::Config;
use argus_storage::{Db, Options};
use std::time::Duration;

/// Shortest accepted truncation period (the head keeps 1.5 periods).
const MIN_TRUNCATE_EVERY: Duration = Duration::from_secs(1);

/// The `--storage.agent.*` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOptions {
    /// `--storage.agent.wal-truncate-frequency`.
    pub truncate_every: Duration,
    /// `--storage.agent.wal-segment-size`, bytes.
    pub wal_segment_size: u64,
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
        })
    }

    /// The storage options of an agent: a WAL-only head cut every `truncate_every`.
    pub fn db_options(&self, max_backlog: Option<u64>) -> Options {
        Options {
            retention_ms: None,
            block_range_ms: i64::try_from(self.truncate_every.as_millis()).unwrap_or(i64::MAX),
            wal_segment_size: self.wal_segment_size,
            wal_max_backlog_bytes: max_backlog,
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
