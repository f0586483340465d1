//! COCOON worker guest agent (library side; the binary is `cocoon-agent`).
//!
//! Boot order (issue 6, item 2): config -> RTMR3 events (config, model, engine command
//! line) -> GPU step -> TLS + receipt keys in memory -> RA-TLS certificate -> engine ->
//! serve. [`boot`] runs that sequence; each step lives in its own module.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod accounting;
pub mod boot;
pub mod cert;
pub mod config;
pub mod engine;
pub mod gpu;
pub mod keys;
pub mod ledger;
pub mod model_digest;
pub mod runtime_log;
pub mod server;
pub mod shutdown;
pub mod tee;
pub mod upstream;

pub mod ton;
// Until the ledger helper's `ton` and `ledger` modules land: the items the agent uses.
pub mod ledger_shim;
