//! `ApiError`: Prometheus's `errorType` and status code, rendered as
//! `{"status":"error","errorType":"bad_data","error":"…"}`. The one place errors from storage
//! and the query engine are mapped to HTTP.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Prometheus's error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// 400.
    BadData,
    /// 422.
    Execution,
    /// 503.
    Timeout,
    /// 499 (Prometheus's "client closed connection"; the client has gone anyway).
    Canceled,
    /// 500.
    Internal,
    /// 500, as Prometheus answers it (e.g. admin APIs disabled).
    Unavailable,
    /// 404.
    NotFound,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            // Prometheus's respondError has no case for `unavailable`: its default is 500.
            ErrorType::Internal | ErrorType::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    /// Type (decides the status code).
    pub kind: ErrorType,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    /// `invalid parameter "name": reason`, as Prometheus's `invalidParamError`.
    pub fn invalid_param(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {reason}"))
    }

    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorType::Internal,
            message: message.into(),
        }
    }

    /// From a storage error.
    pub fn storage(e: &argus_storage::Error) -> Self {
        let kind = match e.kind() {
            argus_storage::ErrorKind::BadData => ErrorType::BadData,
            argus_storage::ErrorKind::Execution => ErrorType::Execution,
            argus_storage::ErrorKind::Internal => ErrorType::Internal,
        };
        Self {
            kind,
            message: e.to_string(),
        }
    }

    /// From a query engine error.
    pub fn query(e: &argus_query::Error) -> Self {
        let kind = match e.kind {
            argus_query::ErrorKind::BadData => ErrorType::BadData,
            argus_query::ErrorKind::Execution => ErrorType::Execution,
            argus_query::ErrorKind::Timeout => ErrorType::Timeout,
            argus_query::ErrorKind::Canceled => ErrorType::Canceled,
            argus_query::ErrorKind::Internal => ErrorType::Internal,
        };
        Self {
            kind,
            message: e.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from("{\"status\":\"error\",\"errorType\":\"");
        body.push_str(self.kind.name());
        body.push_str("\",\"error\":");
        super::format::push_json_str(&mut body, &self.message);
        body.push('}');
        (
            self.kind.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
