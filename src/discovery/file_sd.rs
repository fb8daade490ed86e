//! `file_sd_configs`: JSON or YAML files of target groups, matched by glob, re-read when a
//! file's mtime (or the set of matching files) changes and at every `refresh_interval`.
//!
//! As Prometheus: each group gets `__meta_filepath`, its source is `<path>:<index>`, a file that
//! fails to parse keeps its previous groups (the error is logged), and the groups of a file that
//! disappeared are sent once with no targets so consumers drop them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::TargetGroup;
use crate::config::scrape::FileSdConfig;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// How often mtimes are polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Largest target file read (bounded: a file is operator-controlled, but keep memory bounded).
const MAX_FILE_BYTES: u64 = 64 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Why a target file was not used.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Decoding failed.
    #[error("cannot parse {path}: {msg}")]
    Parse {
        /// The file.
        path: String,
        /// The decoder's message.
        msg: String,
    },
}

/// Reads one file into target groups.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| FileSdError::Io {
        path: p.clone(),
        source: e,
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(FileSdError::Parse {
            path: p,
            msg: format!("file larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| FileSdError::Io {
        path: p.clone(),
        source: e,
    })?;
    let parse_err = |msg: String| FileSdError::Parse {
        path: p.clone(),
        msg,
    };
    let groups: Vec<FileGroup> = if p.ends_with(".json") {
        serde_json::from_slice(&bytes).map_err(|e| parse_err(e.to_string()))?
    } else if bytes.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        serde_yaml_ng::from_slice(&bytes).map_err(|e| parse_err(e.to_string()))?
    };
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        for name in g.labels.keys() {
            if !argus_query::names::is_legacy_label_name(name) {
                return Err(parse_err(format!("invalid label name {name:?}")));
            }
        }
        let mut labels = g.labels;
        labels.insert("__meta_filepath".into(), p.clone());
        out.push(TargetGroup {
            source: format!("{p}:{i}"),
            targets: g
                .targets
                .into_iter()
                .map(|t| BTreeMap::from([("__address__".to_string(), t)]))
                .collect(),
            labels,
        });
    }
    Ok(out)
}

/// `*`, `?` wildcard match of one path element.
fn wildcard(pat: &[u8], s: &[u8]) -> bool {
    match (pat.split_first(), s.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            wildcard(rest, s)
                || s.split_first()
                    .is_some_and(|(_, srest)| wildcard(pat, srest))
        }
        (Some((b'?', rest)), Some((_, srest))) => wildcard(rest, srest),
        (Some((p, rest)), Some((c, srest))) if p == c => wildcard(rest, srest),
        _ => false,
    }
}

/// Files matching `pattern` (wildcards allowed in the last path element), sorted.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| wildcard(name.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// One file-SD provider. Owned by the task that runs it.
pub struct FileDiscovery {
    cfg: FileSdConfig,
    poll: Duration,
    /// mtime per file at its last read.
    mtimes: HashMap<PathBuf, Option<SystemTime>>,
    /// Sources sent per file, to empty them when the file goes away.
    sources: HashMap<PathBuf, Vec<String>>,
}

impl FileDiscovery {
    /// A provider for `cfg`, polling every [`POLL_INTERVAL`].
    pub fn new(cfg: FileSdConfig) -> Self {
        Self::with_poll_interval(cfg, POLL_INTERVAL)
    }

    /// Same with another poll period (tests).
    pub fn with_poll_interval(cfg: FileSdConfig, poll: Duration) -> Self {
        Self {
            cfg,
            poll,
            mtimes: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// Re-reads what changed (everything when `full`); returns the groups to send (may be empty).
    pub fn refresh(&mut self, full: bool) -> Vec<TargetGroup> {
        let mut files: Vec<PathBuf> = self.cfg.files.iter().flat_map(|p| expand(p)).collect();
        files.sort();
        files.dedup();
        let mut out = Vec::new();
        for f in &files {
            let mtime = std::fs::metadata(f).and_then(|m| m.modified()).ok();
            if !full && self.mtimes.get(f) == Some(&mtime) {
                continue;
            }
            match read_file(f) {
                Ok(groups) => {
                    self.mtimes.insert(f.clone(), mtime);
                    let new: Vec<String> = groups.iter().map(|g| g.source.clone()).collect();
                    // Groups that the file no longer has are sent empty.
                    for old in self.sources.get(f).into_iter().flatten() {
                        if !new.contains(old) {
                            out.push(TargetGroup {
                                source: old.clone(),
                                ..Default::default()
                            });
                        }
                    }
                    self.sources.insert(f.clone(), new);
                    out.extend(groups);
                }
                Err(e) => {
                    tracing::error!(error = %e, "file service discovery: keeping previous targets");
                    self.mtimes.insert(f.clone(), mtime);
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .sources
            .keys()
            .filter(|k| !files.contains(k))
            .cloned()
            .collect();
        for f in gone {
            self.mtimes.remove(&f);
            for s in self.sources.remove(&f).unwrap_or_default() {
                out.push(TargetGroup {
                    source: s,
                    ..Default::default()
                });
            }
        }
        out
    }

    /// [`FileDiscovery::refresh`] on a blocking thread (file reads must not stall an async
    /// worker on a slow disk or NFS mount). `None` if that thread panicked.
    async fn refresh_blocking(mut self, full: bool) -> Option<(Self, Vec<TargetGroup>)> {
        let joined = tokio::task::spawn_blocking(move || {
            let groups = self.refresh(full);
            (self, groups)
        })
        .await;
        match joined {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "file service discovery stopped");
                None
            }
        }
    }

    /// Sends the initial groups, then changes, until the receiver is dropped.
    pub async fn run(mut self, tx: mpsc::Sender<Vec<TargetGroup>>) {
        let initial;
        (self, initial) = match self.refresh_blocking(true).await {
            Some(r) => r,
            None => return,
        };
        if tx.send(initial).await.is_err() {
            return;
        }
        let mut last_full = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = tx.closed() => return,
            }
            let full = last_full.elapsed() >= self.cfg.refresh_interval.0;
            if full {
                last_full = Instant::now();
            }
            let groups;
            (self, groups) = match self.refresh_blocking(full).await {
                Some(r) => r,
                None => return,
            };
            if !groups.is_empty() && tx.send(groups).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches() {
        let check = |p: &str, s: &str, want: bool| {
            assert_eq!(wildcard(p.as_bytes(), s.as_bytes()), want, "{p} {s}")
        };
        check("*.json", "a.json", true);
        check("*.json", "a.yml", false);
        check("t?.yml", "t1.yml", true);
        check("t?.yml", "t12.yml", false);
        check("*", "", true);
    }

    #[test]
    fn reads_json_and_yaml_and_tracks_changes() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("a.json");
        let y = dir.path().join("b.yml");
        std::fs::write(
            &j,
            r#"[{"targets": ["h1:1", "h2:2"], "labels": {"env": "p"}}]"#,
        )
        .unwrap();
        std::fs::write(&y, "- targets: [h3:3]\n").unwrap();
        let cfg = FileSdConfig {
            files: vec![
                format!("{}/*.json", dir.path().display()),
                y.display().to_string(),
            ],
            ..Default::default()
        };
        let mut d = FileDiscovery::new(cfg);
        let g = d.refresh(true);
        assert_eq!(g.len(), 2);
        let a = g.iter().find(|g| g.source.ends_with("a.json:0")).unwrap();
        assert_eq!(a.targets.len(), 2);
        assert_eq!(a.labels["env"], "p");
        assert_eq!(a.labels["__meta_filepath"], j.display().to_string());
        assert!(d.refresh(false).is_empty(), "nothing changed");

        // A broken file keeps its previous groups (nothing sent for it).
        std::fs::write(&y, "- targets: [unclosed\n").unwrap();
        let g = d.refresh(true);
        assert!(g.iter().all(|g| !g.source.contains("b.yml")), "{g:?}");

        // A removed file empties its groups.
        std::fs::remove_file(&j).unwrap();
        let g = d.refresh(false);
        assert_eq!(g.len(), 1);
        assert!(g[0].source.ends_with("a.json:0") && g[0].targets.is_empty());
    }

    #[test]
    fn rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.json");
        std::fs::write(&f, r#"[{"targets": ["a:1"], "labels": {"bad-name": "v"}}]"#).unwrap();
        assert!(matches!(read_file(&f), Err(FileSdError::Parse { .. })));
        std::fs::write(&f, r#"{"not": "a list"}"#).unwrap();
        assert!(matches!(read_file(&f), Err(FileSdError::Parse { .. })));
    }
}
