//! Small shared pieces below every domain module and the HTTP edge: time parsing and
//! formatting ([`time`]), JSON string writing ([`json`]), bounded gzip decompression ([`gzip`]), and the outgoing HTTP client built
//! from a config's client options ([`http_client`], with [`oauth2`] tokens). Nothing here
//! knows the HTTP server.

pub mod gzip;
pub mod http_client;
pub mod json;
pub mod oauth2;
pub mod time;
