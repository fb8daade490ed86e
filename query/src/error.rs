//! The query error type: a class (mapped to Prometheus's `errorType`) and a message.

/// Class of a query error, mapped to Prometheus's `errorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `bad_data` (HTTP 400): parse errors, bad arguments.
    BadData,
    /// `execution` (HTTP 422): runtime failures such as many-to-many matching.
    Execution,
    /// `timeout` (HTTP 503).
    Timeout,
    /// `canceled` (HTTP 503).
    Canceled,
    /// `internal` (HTTP 500): storage failures.
    Internal,
}

impl ErrorKind {
    /// Prometheus's `errorType` string for this class.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A query error with a Prometheus-style message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Class.
    pub kind: ErrorKind,
    /// Message, as Prometheus words it where possible.
    pub message: String,
}

impl Error {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadData,
            message: message.into(),
        }
    }

    /// An `execution` error.
    pub fn execution(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Execution,
            message: message.into(),
        }
    }

    /// An `internal` error (storage failures).
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Result alias for this crate.
pub(crate) type Result<T> = std::result::Result<T, Error>;
