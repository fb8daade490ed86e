//! Pull scraper: exposition parsers, scrape loops, relabeling, target API.
//!
//! [`ScrapeManager`] owns one scrape pool per job. A pool turns target groups from its
//! discoverers (static, file, Kubernetes) into `target::Target`s through target relabeling and
//! runs one tokio task per target (`scrape_loop`). Each loop fetches the body
//! (`client`), parses it with the zero-copy [`expfmt`] cursor, maps series text to storage refs
//! through its [`cache::SeriesCache`], appends samples, staleness markers and the `up`/`scrape_*`
//! series (`report`) through `argus_storage::Appender`, and records health for
//! `/api/v1/targets` (served by `api::targets`).

pub(crate) mod buffers;
pub mod cache;
pub(crate) mod client;
pub(crate) mod committer;
pub mod expfmt;
pub(crate) mod manager;
pub mod metrics;
pub(crate) mod nhcb;
pub mod protobuf;
pub(crate) mod report;
pub(crate) mod scrape_loop;
pub(crate) mod target;

pub use manager::ScrapeManager;

/// Why a scrape, or applying a configuration, failed. `Display` is the `lastError` text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid scrape configuration.
    #[error("{0}")]
    Config(String),
    /// The request failed (connection, TLS, timeout, …); Go-style `Get "url": cause`.
    #[error("Get {url:?}: {msg}")]
    Http {
        /// The scrape URL.
        url: String,
        /// What went wrong.
        msg: String,
    },
    /// Non-200 answer.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// Body over `body_size_limit`.
    #[error("body size limit exceeded")]
    BodySizeLimit,
    /// `Content-Type` not usable and no fallback configured.
    #[error(
        "received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target"
    )]
    ContentType(String),
    /// Malformed exposition.
    #[error("{0}")]
    Parse(expfmt::ParseError),
    /// More samples than `sample_limit`.
    #[error("sample limit exceeded")]
    SampleLimit,
    /// A label limit was exceeded, or a sample lost its name.
    #[error("{0}")]
    LabelLimit(String),
    /// The storage refused the batch.
    #[error("storage: {0}")]
    Storage(argus_storage::Error),
}
