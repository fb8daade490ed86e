//! Recording and alerting rules (`../shared/conformance/rules/FORMAT.md`): rule files
//! ([`load_groups`], [`parse_file`]), group evaluation ([`Group`]) with the alert state machine,
//! `ALERTS`/`ALERTS_FOR_STATE`, stale markers, notifications due ([`OutgoingAlert`]) and
//! `for`-state restore, plus the promtool-compatible commands (`argus check …`, `argus test rules`).
//!
//! The scheduler, reload, HTTP API and self-metrics live elsewhere and use [`Group`].

mod alerting;
mod check;
pub mod cli;
mod expand;
mod file;
mod group;
pub mod manager;
pub(crate) mod notify;
mod restore;
mod status;
#[cfg(test)]
mod tests;
mod unittest;
mod validate;
mod yaml;

pub use check::{LintOptions, check_config, check_rules, duplicates};
pub use file::{
    GroupSpec, LoadOptions, RuleFileError, RuleKind, RuleSpec, expand_glob, load_groups,
    parse_file, parse_text,
};
pub use group::{EvalEnv, Group, generator_url, query_escape};
pub use notify::{AlertSender, OutgoingAlert};
pub use status::{AlertState, AlertStatus, GroupStatus, Health, RuleStatus};
pub use unittest::{FileOutcome, GroupOutcome, RunOptions, run_file};
pub use validate::canonical_expr;
