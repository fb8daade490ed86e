//! Remote-write receiver. OWNER: server helper.
//!
//! [`remote_write`] decodes snappy + protobuf bodies under size limits and appends them through
//! `argus_storage::Appender`; [`prompb`] holds the hand-written prost messages. The HTTP handler
//! lives in `api::write`.

pub mod metadata;
pub mod prompb;
pub mod prompb_v2;
pub mod remote_write;
pub mod remote_write_v2;
