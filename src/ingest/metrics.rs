//! The remote-write receiver's own metrics (`argus_remote_write_*`), registered with
//! `metrics::Registry` by the server.

use crate::ingest::remote_write::Reason;
use crate::metrics::{Collect, header, sample};
use std::sync::atomic::{AtomicU64, Ordering};

/// Remote-write receiver counters.
#[derive(Default)]
pub struct RemoteWriteMetrics {
    received: AtomicU64,
    written: AtomicU64,
    /// Indexed like [`Reason::ALL`].
    rejected: [AtomicU64; 6],
    metadata: AtomicU64,
}

impl RemoteWriteMetrics {
    /// Adds one request's outcome.
    pub fn record(&self, received: u64, written: u64, rejected: &[(Reason, u64)], metadata: u64) {
        self.received.fetch_add(received, Ordering::Relaxed);
        self.written.fetch_add(written, Ordering::Relaxed);
        self.metadata.fetch_add(metadata, Ordering::Relaxed);
        for (r, n) in rejected {
            if let Some(c) = Reason::ALL
                .iter()
                .position(|x| x == r)
                .and_then(|i| self.rejected.get(i))
            {
                c.fetch_add(*n, Ordering::Relaxed);
            }
        }
    }
}

impl Collect for RemoteWriteMetrics {
    fn collect(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let name = "argus_remote_write_samples_received_total";
        header(
            out,
            name,
            "counter",
            "Samples received by the remote-write receiver.",
        );
        sample(out, name, "", get(&self.received));
        let name = "argus_remote_write_samples_written_total";
        header(
            out,
            name,
            "counter",
            "Samples appended and committed from remote write.",
        );
        sample(out, name, "", get(&self.written));
        let name = "argus_remote_write_samples_rejected_total";
        header(
            out,
            name,
            "counter",
            "Samples rejected by the remote-write receiver, by reason.",
        );
        for (r, c) in Reason::ALL.iter().zip(&self.rejected) {
            sample(out, name, &format!("reason=\"{}\"", r.as_str()), get(c));
        }
        let name = "argus_remote_write_metadata_received_total";
        header(
            out,
            name,
            "counter",
            "Metadata entries received by remote write.",
        );
        sample(out, name, "", get(&self.metadata));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;
    use std::sync::Arc;

    #[test]
    fn renders_rejections_by_reason() {
        let reg = Registry::new();
        let rw = Arc::new(RemoteWriteMetrics::default());
        reg.register(rw.clone());
        rw.record(10, 7, &[(Reason::OutOfOrder, 3)], 1);
        let text = reg.render();
        for w in [
            "argus_remote_write_samples_rejected_total{reason=\"out_of_order\"} 3\n",
            "argus_remote_write_samples_written_total 7\n",
        ] {
            assert!(text.contains(w), "missing {w:?} in:\n{text}");
        }
    }
}
