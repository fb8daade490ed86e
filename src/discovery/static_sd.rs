//! `static_configs`: each entry is one target group, with source = its index (as Prometheus).

use super::TargetGroup;
use crate::config::scrape::StaticConfig;
use std::collections::BTreeMap;

/// The target groups of a job's `static_configs`.
pub fn groups(cfgs: &[StaticConfig]) -> Vec<TargetGroup> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| TargetGroup {
            source: i.to_string(),
            targets: c
                .targets
                .iter()
                .map(|t| BTreeMap::from([("__address__".to_string(), t.clone())]))
                .collect(),
            labels: c.labels.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_entry() {
        let g = groups(&[
            StaticConfig {
                targets: vec!["a:1".into(), "b:2".into()],
                labels: BTreeMap::from([("env".into(), "x".into())]),
            },
            StaticConfig {
                targets: vec!["c:3".into()],
                labels: BTreeMap::new(),
            },
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "0");
        assert_eq!(g[0].targets[1]["__address__"], "b:2");
        assert_eq!(g[0].labels["env"], "x");
        assert_eq!(g[1].source, "1");
        assert_eq!(g[1].targets.len(), 1);
    }
}
