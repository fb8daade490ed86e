//! Recording and alerting rules.

mod notify;
pub use notify::{AlertSender, OutgoingAlert};
