//! The exposition model and its writers: the client-model protobuf types
//! (`io.prometheus.client.MetricFamily`, [`proto`]) and text format 0.0.4 ([`text`]), shared by
//! the Pushgateway (which stores pushed families in this model) and `/federate` (which writes
//! the newest samples in it). Decoding exposition text lives in `scrape::expfmt`.

pub mod proto;
pub mod text;

/// The media type of the delimited protobuf exposition, as Prometheus and Pushgateway answer it.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Whether an `Accept` header asks for the delimited protobuf exposition before text: entries by
/// falling `q` (ties in header order), the first one that names protobuf
/// (`proto=io.prometheus.client.MetricFamily; encoding=delimited`), `text/plain` or `*/*`
/// decides, as Go's `expfmt.Negotiate` does.
pub fn accepts_protobuf(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut entries: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .map(|(i, e)| {
            let q = e
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q, i, e)
        })
        .collect();
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, e) in entries {
        let lower = e.to_ascii_lowercase();
        let media = lower.split(';').next().unwrap_or("").trim();
        if media == "application/vnd.google.protobuf"
            && lower.contains("proto=io.prometheus.client.metricfamily")
            && lower.contains("encoding=delimited")
        {
            return true;
        }
        if media == "text/plain" || media == "*/*" {
            return false;
        }
    }
    false
}
