//! The storage crate's error type.

use std::path::PathBuf;

/// Result alias for the storage crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Broad class of an error, mapped to Prometheus's `errorType` at the HTTP edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid (HTTP 400, `bad_data`).
    BadData,
    /// The operation failed while running (`execution`).
    Execution,
    /// Internal failure: I/O, corruption (`internal`).
    Internal,
}

/// Every failure the storage crate reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Sample older than the newest sample of its series, outside the out-of-order window.
    #[error("out of order sample")]
    OutOfOrder,
    /// Sample older than what the head accepts (before the head's minimum valid time).
    #[error("out of bounds")]
    OutOfBounds,
    /// Sample older than the out-of-order window allows.
    #[error("too old sample")]
    TooOld,
    /// Same timestamp as an existing sample, different value.
    #[error("duplicate sample for timestamp")]
    DuplicateSample,
    /// A label set that is not valid (empty, unsorted, duplicate or invalid names).
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    /// A matcher that cannot be built (bad regex) or a selector matching everything.
    #[error("invalid matcher: {0}")]
    InvalidMatcher(String),
    /// Bytes on disk or on the wire that fail a check.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        /// File (or a description of the buffer).
        path: PathBuf,
        /// Byte offset where the check failed.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// An I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "cannot open block /data/01H…".
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A previous fsync failed; the appender refuses further writes.
    #[error("storage poisoned by an earlier write failure")]
    Poisoned,
    /// The database is closed.
    #[error("database closed")]
    Closed,
    /// Any other invalid argument.
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a corruption error.
    pub fn corruption(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// The error's class, for the HTTP edge.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::OutOfOrder
            | Error::OutOfBounds
            | Error::TooOld
            | Error::DuplicateSample
            | Error::InvalidLabels(_)
            | Error::InvalidMatcher(_)
            | Error::InvalidArgument(_) => ErrorKind::BadData,
            Error::Closed => ErrorKind::Execution,
            Error::Corruption { .. } | Error::Io { .. } | Error::Poisoned => ErrorKind::Internal,
        }
    }

    /// True for per-sample rejections (the rest of a batch may still be appended).
    pub fn is_sample_rejection(&self) -> bool {
        matches!(
            self,
            Error::OutOfOrder | Error::OutOfBounds | Error::TooOld | Error::DuplicateSample
        )
    }
}
