//! Defaults of the `global:` intervals filled in as Prometheus's `GlobalConfig.UnmarshalYAML`
//! and `ScrapeConfig.Validate` do: an unset (or zero) value means "default", and an unset
//! scrape timeout follows the interval down.
//!
//! | field | unset or `0s` |
//! |---|---|
//! | `global.scrape_interval` | 1m |
//! | `global.scrape_timeout` | 10s, or the global interval when that is shorter |
//! | `global.evaluation_interval` | 1m |
//! | job `scrape_interval` | `global.scrape_interval` |
//! | job `scrape_timeout` | `global.scrape_timeout`, or the job's interval when shorter |
//!
//! An explicit timeout above its interval stays an error. A zero interval can thus never reach
//! a timer (`tokio::time::interval(0)` panics).

use super::GlobalConfig;
use super::duration::PromDuration;
use std::time::Duration;

/// Prometheus's `DefaultGlobalConfig.ScrapeInterval`.
pub(crate) const SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's `DefaultGlobalConfig.ScrapeTimeout`.
pub(crate) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus's `DefaultGlobalConfig.EvaluationInterval`.
pub(crate) const EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// serde's value for an absent interval field: zero, "unset", replaced by [`apply`].
pub(crate) fn unset() -> PromDuration {
    PromDuration(Duration::ZERO)
}

/// Fills in unset global intervals; the error is Prometheus's message.
pub(crate) fn apply(g: &mut GlobalConfig) -> Result<(), String> {
    if g.scrape_interval.0.is_zero() {
        g.scrape_interval = PromDuration(SCRAPE_INTERVAL);
    }
    if g.scrape_timeout > g.scrape_interval {
        return Err(format!(
            "global scrape timeout greater than scrape interval ({} > {})",
            g.scrape_timeout, g.scrape_interval
        ));
    }
    if g.scrape_timeout.0.is_zero() {
        g.scrape_timeout = PromDuration(SCRAPE_TIMEOUT.min(g.scrape_interval.0));
    }
    if g.evaluation_interval.0.is_zero() {
        g.evaluation_interval = PromDuration(EVALUATION_INTERVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn global_defaults_as_prometheus() {
        let check = |yaml: &str, want: Result<(u64, u64, u64), &str>| {
            let got = Config::parse(yaml).map(|c| {
                (
                    c.global.scrape_interval.0,
                    c.global.scrape_timeout.0,
                    c.global.evaluation_interval.0,
                )
            });
            match (got, want) {
                (Ok(g), Ok((i, t, e))) => assert_eq!(g, (secs(i), secs(t), secs(e)), "{yaml}"),
                (Err(g), Err(w)) => assert!(g.to_string().contains(w), "{yaml}: {g}"),
                (g, w) => panic!("{yaml}: got {g:?}, want {w:?}"),
            }
        };
        check("", Ok((60, 10, 60)));
        check("global: {}", Ok((60, 10, 60)));
        // Was refused: "global scrape timeout greater than scrape interval (10s > 1s)".
        check("global: {scrape_interval: 1s}", Ok((1, 1, 60)));
        check(
            "global: {scrape_interval: 5s, scrape_timeout: 2s}",
            Ok((5, 2, 60)),
        );
        check("global: {scrape_interval: 15s}", Ok((15, 10, 60)));
        // Zero means unset, as in Prometheus (it used to reach interval(0) and panic).
        check("global: {scrape_interval: 0s}", Ok((60, 10, 60)));
        check(
            "global: {scrape_interval: 0s, scrape_timeout: 0s, evaluation_interval: 0s}",
            Ok((60, 10, 60)),
        );
        check(
            "global: {scrape_interval: 30s, evaluation_interval: 0s}",
            Ok((30, 10, 60)),
        );
        check(
            "global: {scrape_interval: 5s, scrape_timeout: 10s}",
            Err("global scrape timeout greater than scrape interval (10s > 5s)"),
        );
        check(
            "global: {scrape_timeout: 2m}",
            Err("global scrape timeout greater than scrape interval (2m > 1m)"),
        );
    }

    #[test]
    fn job_intervals_inherit_as_prometheus() {
        let check = |yaml: &str, want: Result<(u64, u64), &str>| {
            // The scrape manager validates jobs when it applies a config (start, reload).
            let got = Config::parse(yaml)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    let j = &c.scrape_configs[0];
                    j.validate(&c.global)?;
                    Ok((j.interval(&c.global), j.timeout(&c.global)))
                });
            match (got, want) {
                (Ok(g), Ok((i, t))) => assert_eq!(g, (secs(i), secs(t)), "{yaml}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{yaml}: {g}"),
                (g, w) => panic!("{yaml}: got {g:?}, want {w:?}"),
            }
        };
        let job = |global: &str, job: &str| {
            format!("global: {{{global}}}\nscrape_configs:\n  - {{job_name: j{job}}}\n")
        };
        check(&job("", ""), Ok((60, 10)));
        check(&job("scrape_interval: 1s", ""), Ok((1, 1)));
        check(&job("", ", scrape_interval: 2s"), Ok((2, 2)));
        check(
            &job("scrape_timeout: 5s", ", scrape_interval: 30s"),
            Ok((30, 5)),
        );
        check(
            &job("scrape_interval: 20s", ", scrape_interval: 0s"),
            Ok((20, 10)),
        );
        check(&job("", ", scrape_timeout: 30s"), Ok((60, 30)));
        check(
            &job("", ", scrape_interval: 5s, scrape_timeout: 6s"),
            Err(
                "scrape timeout greater than scrape interval for scrape config with job name \"j\"",
            ),
        );
    }
}
