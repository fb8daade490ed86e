//! Small shared pieces below every domain module and the HTTP edge: time parsing and
//! formatting ([`time`]) and JSON string writing ([`json`]). Nothing here knows HTTP.

pub mod json;
pub mod time;
