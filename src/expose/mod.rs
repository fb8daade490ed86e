//! The exposition model and its writers: the client-model protobuf types
//! (`io.prometheus.client.MetricFamily`, [`proto`]) and text format 0.0.4 ([`text`]), shared by
//! the Pushgateway (which stores pushed families in this model) and `/federate` (which writes
//! the newest samples in it). Decoding exposition text lives in `scrape::expfmt`.

pub mod proto;
pub mod text;
